"""The material library: proven laser settings per material, kept and reused.

- :mod:`.model`: a material's settings per operation (cut, score, fill: the fields of a design
  layer; image: the material-related fields of a project's ``laser`` settings).
- :mod:`.starter`: the shared starter library seeded at first start.
- :mod:`.clb`: LightBurn ``.clb`` import (hostile XML refused); :mod:`.clb_export`: export.
- :mod:`.apply`: copying a material's settings in and telling whether they changed since.
- :mod:`.testgrid` and :mod:`.hershey`: the power × speed test grid with stroke-font labels.
"""
