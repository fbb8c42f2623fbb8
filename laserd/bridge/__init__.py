"""laserd on the LAN: mDNS/DNS-SD discovery and the GRBL-over-TCP bridge for desktop senders.

:mod:`laserd.bridge.discovery` announces the appliance (``<name>.local``) so nobody types an
IP address; the bridge modules let LightBurn or any GRBL sender work the machine through
laserd's own link and safety layer, one accepted session at a time.
"""
