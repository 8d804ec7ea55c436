"""The OME-NGFF layer: group reading, the multiscales/plate/well/labels/omero model, image
geometry, images and their levels, regions, tiles, rendering, collections, ``open`` and
``validate``. Builds on ``ngffcore.zarr`` and ``ngffcore.store``; nothing below imports it."""
