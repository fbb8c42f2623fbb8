"""The image pipeline: a picture and a project's laser settings → raster G-code and previews.

- :mod:`laserd.imaging.laser_settings`: the ``laser`` settings of a project (the one pydantic
  model the API validates and the converter reads), with the dithering modes;
- :mod:`laserd.imaging.dither`: grey levels → on/off pixels (ordered, error diffusion);
- :mod:`laserd.imaging.raster`: an image → streamed raster G-code, and the size it will make;
- :mod:`laserd.imaging.preview`: G-code → the PNG preview of what the laser will burn.

Each is pure work over plain values (no event loop, no database): the processing worker
process calls them. The vector pipeline (:mod:`laserd.designs`) sits beside it and uses the
raster converter for the images placed in a design; it can join this package when its own
engineers move it.
"""
