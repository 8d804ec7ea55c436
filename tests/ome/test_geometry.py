"""The image geometry model (``ngffcore.ome.geometry``): axis roles by name, the default
plane from omero ``rdefs``, the channel count, and the level and channel checks that tiles,
rendering and ``ngffcore bench`` share. Pure: no I/O."""

from __future__ import annotations

import pytest

import ngffcore
from ngffcore.ome.geometry import Geometry
from ngffcore.ome.multiscales import Axis


def geometry(names: str, shape: tuple[int, ...], ome: dict | None = None,
             n_levels: int = 3) -> Geometry:
    axes = [Axis(n.upper() if n == "x" else n) for n in names]  # names match in any case
    shapes = [shape] + [tuple(max(1, s // 2 ** k) for s in shape) for k in range(1, n_levels)]
    return Geometry.of(axes, shapes, ome or {})


def test_axis_roles_by_name_in_any_case() -> None:
    g = geometry("tczyx", (2, 3, 4, 50, 60))
    assert [g.index(n) for n in "tczyx"] == [0, 1, 2, 3, 4]
    assert g.index("X") == 4 and g.yx("tile") == (3, 4)
    assert g.channel_count == 3
    g2 = geometry("yx", (50, 60))
    assert g2.index("c") is None and g2.index("t") is None and g2.channel_count == 1
    with pytest.raises(ngffcore.SelectionError, match="no y and x axes to render"):
        geometry("tcz", (2, 3, 4)).yx("render")


def test_default_plane_from_rdefs() -> None:
    rdefs = {"omero": {"rdefs": {"defaultT": 1, "defaultZ": 3}}}
    g = geometry("tczyx", (2, 3, 4, 50, 60), rdefs)
    assert (g.default_plane("t"), g.default_plane("z")) == (1, 3)
    assert g.default_plane("Z") == 3
    # no such axis: None; no rdefs: 0
    assert geometry("cyx", (3, 50, 60), rdefs).default_plane("z") is None
    assert geometry("zyx", (4, 50, 60)).default_plane("z") == 0
    # advisory metadata: out of range, not an int, or a bool is ignored (0)
    for bad in (4, -1, "2", True, 2.0):
        g = geometry("zyx", (4, 50, 60), {"omero": {"rdefs": {"defaultZ": bad}}})
        assert g.default_plane("z") == 0, bad
    assert geometry("zyx", (4, 50, 60), {"omero": {"rdefs": "x"}}).default_plane("z") == 0


def test_channel_checks() -> None:
    g = geometry("czyx", (3, 4, 50, 60))
    assert g.check_channels(None) == [0, 1, 2]
    assert g.check_channels([2, 0]) == [2, 0]
    for bad in ([3], [-1], [0, 5]):
        with pytest.raises(ngffcore.SelectionError, match="out of range: the image has 3 "
                                                          "channels") as info:
            g.check_channels(bad)
        assert isinstance(info.value, IndexError)
    with pytest.raises(ngffcore.SelectionError, match="no channel"):
        g.check_channels([])
    plain = geometry("zyx", (4, 50, 60))
    assert plain.check_channels(None) == [0] and plain.check_channels([0]) == [0]
    with pytest.raises(ngffcore.SelectionError, match="the image has 1 channel$"):
        plain.check_channels([1])
    with pytest.raises(ngffcore.SelectionError, match="no channel axis"):
        plain.check_channels([0, 0])


def test_level_checks() -> None:
    g = geometry("yx", (50, 60), n_levels=3)
    assert [g.check_level(i) for i in (0, 2, -1, -3)] == [0, 2, 2, 0]
    for bad in (3, -4):
        with pytest.raises(ngffcore.SelectionError, match="out of range: the image has 3 "
                                                          "levels"):
            g.check_level(bad)
