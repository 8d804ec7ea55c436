"""The OME-NGFF 0.6 (RFC-5) coordinate-system and coordinate-transformation model: one
import point for :class:`CoordinateSystem`, :class:`SystemRef`, :class:`Transform` and its
kinds, :func:`parse_transform` and :func:`parse_coordinate_systems`. Pure: no store I/O
(transforms whose parameters live in arrays call the ``load_field`` the caller gives).

A transform maps points: ``apply`` takes ``(n, ndim_in)`` coordinates in the input system
(coordinate *i* along the system's axis *i*) and returns ``(n, ndim_out)`` float64 in the
output system; ``to_matrix`` gives the homogeneous ``(ndim_out + 1, ndim_in + 1)`` matrix of
the affine kinds; ``inverse`` the closed-form inverse where the spec defines one.

Readings taken where the 0.6rc0 spec is ambiguous or contradicts itself
-----------------------------------------------------------------------
(the rule — a MUST, the schema, the spec's own invalid test documents — wins over prose and
examples; also in docs/ome.md, "The transform model's readings")

- **input/output** are objects ``{"name", "path"}``, both optional, ``null`` = absent. A bare
  string (``"input": "in"`` in the spec's ``mapAxis1.json``, and pre-0.6 drafts) is read as
  ``{"name": "in"}``: the reader is tolerant; validation reports it (the schema requires an
  object; ``scene_input_output_not_object.json`` is invalid). Whether ``input``/``output``
  must be present depends on where the transform sits (not inside sequence, byDimension,
  bijection): ``parse_transform(..., require_refs=True)`` checks it for a top-level one.
- **Parameters and axes**: parameter *i* belongs to axis *i* of the input/output system.
  Matrices multiply column vectors; an ``affine`` is ``ndim_out`` rows × ``ndim_in + 1``
  columns, the last column the translation (the spec's rule). The full homogeneous
  ``(ndim_out + 1) × (ndim_in + 1)`` form with last row ``[0 … 0 1]`` is also accepted when
  the output system's dimensionality is known and tells the two apart.
- **The examples' prose vs. the rule**: some worked examples name the axes in the other
  order — ``translation.json`` ([9, −1.42] from (j, i) to (y, x)) reads "x = i + 9",
  ``sequence.json`` "x = (i + 0.1) * 2", ``rotation.json`` "x = 0*i − 1*j" — as if x and i
  were the first axes; positions are what count: translation.json gives y = j + 9,
  x = i − 1.42; sequence.json y = (j + 0.1)·2, x = (i + 0.9)·3; rotation.json y = −i, x = j.
  ``affine2d3d.json``'s prose treats the *first* column as the translation ("z = 0*i + 0*j +
  1"), against the affine rule and example 1: the last column is the translation, giving
  z = i, y = 2i + 3j + 4, x = 5i + 6j + 7. The tests pin these values.
- **scale/translation** parameters must be inline: the transformation table's prose mentions
  a ``path``, but the field list, the schema and the invalid test documents
  (``bad_scale_path_not_allowed``, ``bad_translate_path_not_allowed``) forbid it —
  MetadataError. ``affine``/``rotation`` take an inline matrix or a ``path`` (not both).
  Scale factors of zero or below parse (the schema's ``> 0`` is the validator's business;
  the text only says SHOULD be non-zero); a zero factor makes the scale non-invertible.
- **rotation**: ``n × n``, orthonormal with determinant 1, checked to 1e-3 (JSON matrices are
  written with few decimals); its inverse is its transpose.
- **mapAxis** (the 0.6rc0 form): a list of integer input-axis indices, a permutation;
  output axis *i* = input axis ``mapAxis[i]``. Names, dicts (older drafts) are refused.
- **projectAxis**: drop the ``droppedInputs`` coordinates, then insert zeros at the
  ``createdOutputs`` positions; ``ndim_out = ndim_in − dropped + created`` must match the
  systems; indices unique and in range. Affine (``to_matrix`` works); its inverse exists
  only when nothing is dropped (it drops the created axes again).
- **byDimension**: entries ``{"transformation", "inputAxes", "outputAxes"}`` with integer
  indices. The inline form of ``byDimensionXarray.json`` (the member's own ``type`` beside
  ``inputAxes``/``outputAxes``) is read too; axis names (as in ``bad_byDimension_wrong
  axes_type``) are refused. Every output axis is written by exactly one entry
  (``byDimensionInvalid1/2``); input axes may be unused or read by several entries; one
  entry's list may not repeat an axis. Each member's dimensionality must equal its axes
  lists' lengths. Invertible when the entries also read every input axis exactly once.
- **sequence**: non-empty; members' own input/output are kept but ignored when evaluating.
  Members carrying ``inputAxes``/``outputAxes`` (``sequenceSubspace1.json``) have no meaning
  in the 0.6 text: UnsupportedError. Wrappers nest at most 32 deep; at most 10 000
  transforms in one. A JSON tree cannot cycle; cycles through coordinate-system references
  are a graph-level check of the caller.
- **bijection**: ``forward``/``inverse`` without input/output take the bijection's (swapped
  for ``inverse``); input and output dimensionality must be equal. ``apply`` is the
  forward's, ``inverse()`` swaps them, ``to_matrix`` is the forward's (if affine).
- **coordinates/displacements**: the field at ``path`` is loaded on first use via
  ``load_field``, which returns an array or a ``FieldData`` (array, the field's axes, and its
  own index → input-system transform, whose inverse maps points to field indices — may
  include the vector axis, taken at coordinate 0). The vector axis is found by its axis
  type ``"coordinate"``/``"displacement"`` (the text also says it is "the last axis" and that
  it comes "after time and before space"; the example puts it first: the type rule wins);
  a bare array has it last; a 1-D array is a 1-D grid of 1-vectors (xarray-style coordinate
  lists, ``xarrayLike.json``). Vector component *i* is output axis *i*. ``interpolation``
  defaults to ``linear``; ``nearest`` takes the sample whose pixel ``[i − 0.5, i + 0.5)``
  holds the point; ``linear`` is multilinear, holding the edge value in the outer half
  pixel; ``bspline-cubic`` (or the schema's ``cubic``) is the interpolating cubic B-spline
  (Thévenaz et al. 2000, section 8.3: samples prefiltered into coefficients once per field,
  4 neighbours per axis, samples mirrored about the outermost ones as scipy.ndimage's
  ``mode="mirror"``; at most 6 grid axes). Points outside the field's pixels map to NaN
  (the spec is silent). Unknown names parse but raise UnsupportedError when applied. NaN
  samples in a field are allowed (they propagate; with cubic, one NaN makes the whole
  field NaN). No closed-form inverse (use bijection).
- **Unknown types**: a well-formed object whose ``type`` is not one of the twelve is an
  UnsupportedError (a MetadataError subclass): the metadata is not wrong, just beyond 0.6.
- **Limits**: at most 32 dimensions (matrices at most 33 × 33), checked before anything is
  built; parameters must be finite numbers (NaN/inf refused).
- **Not checked here** (document-level, for the caller/validator): that references name
  existing systems, the context restrictions (a dataset's transform is scale, identity or
  sequence[scale, translation]; label references only identity/scale/translation), graph
  connectedness and cycles across references.
"""

from __future__ import annotations

from ngffcore.ome.coordinate_systems import (
    CoordinateSystem,
    SystemRef,
    parse_coordinate_systems,
    parse_system_ref,
)
from ngffcore.ome.transform_base import MAX_NESTING, MAX_TRANSFORM_NDIM, MAX_TRANSFORMS, Transform
from ngffcore.ome.transform_compose import Bijection, ByDimension, DimensionItem, SequenceTransform
from ngffcore.ome.transform_fields import (
    Coordinates,
    Displacements,
    FieldData,
    FieldLoader,
    sample_cubic,
    sample_linear,
    sample_nearest,
)
from ngffcore.ome.transform_linear import Identity, MapAxis, ProjectAxis, Scale, Translation
from ngffcore.ome.transform_matrix import Affine, Rotation
from ngffcore.ome.transform_parse import TRANSFORM_TYPES, parse_transform

__all__ = [
    "CoordinateSystem",
    "SystemRef",
    "Transform",
    "Identity",
    "MapAxis",
    "ProjectAxis",
    "Translation",
    "Scale",
    "Affine",
    "Rotation",
    "SequenceTransform",
    "ByDimension",
    "DimensionItem",
    "Bijection",
    "Coordinates",
    "Displacements",
    "FieldData",
    "FieldLoader",
    "parse_transform",
    "parse_coordinate_systems",
    "parse_system_ref",
    "sample_nearest",
    "sample_linear",
    "sample_cubic",
    "TRANSFORM_TYPES",
    "MAX_TRANSFORM_NDIM",
    "MAX_NESTING",
    "MAX_TRANSFORMS",
]
