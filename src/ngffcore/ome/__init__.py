"""The OME-NGFF layer: groups, the multiscales/plate/well/labels/omero model, images, regions, tiles, rendering, collections, ``open``, ``validate``."""
