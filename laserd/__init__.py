"""laserd: a safe, networked laser appliance for GRBL engravers."""

__version__ = "0.1.0"
