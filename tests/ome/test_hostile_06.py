"""Hostile OME-NGFF 0.6 metadata: the spec's own documents (images with transforms to other
systems, scenes), mutated at random — keys dropped, values replaced by other JSON types, NaN,
huge or negative numbers, lists cut or repeated — and then opened, their transforms composed
and applied, and validated. Whatever the document says, only an ``NgffError`` may come out
(never a TypeError, KeyError, IndexError, RecursionError or a crash), and ``validate``
reports problems instead of raising."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
import ome06_data as d6

ITERATIONS = 300

#: replacement values: every JSON type, and the numbers that break arithmetic
WILD: list[Any] = [None, True, 0, -1, 2**70, 1e308, "x", "", [], [1, 2], {}, {"name": "x"},
                   [[1, 0], [0, 1]], [float("nan")], "NaN", 0.0, -0.0, [0] * 40]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON document (dict keys and list indexes)."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append(prefix + (k,))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append(prefix + (i,))
            out.extend(_paths(v, prefix + (i,)))
    return out


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        places = _paths(doc)
        if not places:
            return doc
        place = rng.choice(places)
        parent = doc
        for step in place[:-1]:
            parent = parent[step]
        last = place[-1]
        action = rng.random()
        if action < 0.25 and isinstance(parent, dict):
            del parent[last]
        elif action < 0.35 and isinstance(parent, list):
            del parent[last]
        elif action < 0.45 and isinstance(parent[last], list):
            parent[last] = parent[last] * rng.randint(2, 3)
        elif action < 0.55 and isinstance(parent[last], (int, float)) \
                and not isinstance(parent[last], bool):
            parent[last] = rng.choice([parent[last] * 1e300, -parent[last], 0, 2**63])
        else:
            parent[last] = copy.deepcopy(rng.choice(WILD))
    return doc


def _image_ome() -> dict[str, Any]:
    systems = [{"name": "physical", "axes": d6.axes("y:space:micrometer", "x:space:micrometer")},
               {"name": "world", "axes": d6.axes("y:space:micrometer", "x:space:micrometer")}]
    extra = [{"type": "sequence", "input": {"name": "physical"}, "output": {"name": "world"},
              "transformations": [
                  {"type": "affine", "affine": [[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]]},
                  {"type": "byDimension", "transformations": [
                      {"type": "scale", "scale": [2.0], "input_axes": [0], "output_axes": [0],
                       "inputAxes": [0], "outputAxes": [0]},
                      {"type": "translation", "translation": [1.0], "inputAxes": [1],
                       "outputAxes": [1]}]}]}]
    return d6.multiscale(systems, [("s0", d6.scale(0.5, 0.5)),
                                   ("s1", d6.scale_translation([1.0, 1.0], [0.25, 0.25]))],
                         "physical", extra=extra)


def _exercise(node: Any) -> None:
    images = node.images.values() if isinstance(node, ngffcore.Scene) else [node]
    for img in images:
        if not isinstance(img, ngffcore.Image):
            continue
        img.coordinate_systems
        for level in range(len(img.levels)):
            for system in img.coordinate_systems:
                t = img.transform(level, output=system.name)
                t.apply(np.zeros((2, t.ndim_in or img.ndim)))
                try:
                    t.to_matrix()
                    t.inverse()
                except ngffcore.UnsupportedError:
                    pass
        img.read_region({img.axes[-1].name: (0.0, 1.0)})


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile06") / "img.zarr"
    d6.write_image(root, _image_ome(), {"s0": (4, 6), "s1": (2, 3)})
    return root


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile06") / "scene.zarr"
    d6.write_group(root, d6.ome_of(d6.example("scene/scene_stitching.json")))
    for k in range(4):
        systems = [{"name": "physical", "axes": d6.axes("y:space:micrometer",
                                                        "x:space:micrometer")}]
        d6.write_image(root / f"tile_{k}",
                       d6.multiscale(systems, [("s0", d6.scale(0.5, 0.5))], "physical"),
                       {"s0": (4, 5)}, seed=k)
    return root


@pytest.mark.parametrize("which", ["image", "scene"])
def test_mutated_documents_raise_only_ngff_errors(which: str, image_dir: Path,
                                                  scene_dir: Path) -> None:
    root = image_dir if which == "image" else scene_dir
    doc = json.loads((root / "zarr.json").read_text())
    original = doc["attributes"]["ome"]
    rng = random.Random(f"hostile-06-{which}")
    opened = refused = 0
    try:
        for _ in range(ITERATIONS):
            mutated = _mutate(original, rng)
            d6.write_group(root, mutated)
            try:
                _exercise(ngffcore.open(str(root), cache=False))
                opened += 1
            except ngffcore.NgffError:
                refused += 1
            problems = ngffcore.validate(str(root))  # reports, never raises
            assert isinstance(problems, list)
    finally:
        d6.write_group(root, original)
    # the mutations reach both outcomes: a test that only ever refused would prove little
    assert opened > 10 and refused > 10, (opened, refused)
