"""Group metadata: a Zarr v3 group's ``zarr.json`` or a Zarr v2 group's ``.zattrs``.

OME-Zarr keeps its metadata in group attributes: at the top level for OME-NGFF ≤ 0.4 (Zarr
v2), under ``attributes["ome"]`` for 0.5 (Zarr v3). :class:`GroupMetadata` hides that
difference: ``ome`` is the dict that holds ``multiscales``, ``plate``, ``well``, ``labels``,
``image-label``, ``omero``, ``bioformats2raw.layout``.

One GET per group; the format is probed (``zarr.json``, then ``.zattrs``) only when neither
the caller nor a parent group already told it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ngffcore.errors import ArgumentError, MetadataError, NotFoundError
from ngffcore.zarr.metadata import parse_json
from ngffcore.store.protocol import Store, get_data

#: keys whose presence makes a group an OME-Zarr node of some kind
OME_KEYS = ("multiscales", "plate", "well", "labels", "bioformats2raw.layout", "series",
            "image-label", "omero")


@dataclass(frozen=True)
class GroupMetadata:
    """One group's metadata, read once. Immutable."""

    zarr_format: int
    url: str  # the group's location, for messages
    path: str  # path of the group inside its store
    attributes: dict[str, Any]  # as stored
    ome: dict[str, Any]  # the OME attributes (``attributes["ome"]`` for 0.5)
    #: Zarr v3 consolidated metadata: child path (relative to this group) → its document
    consolidated: dict[str, dict[str, Any]] | None = None
    #: the document was a Zarr array's, not a group's (reported by ``ome.open``)
    is_array: bool = False

    @property
    def version(self) -> str | None:
        """The OME-NGFF version the group declares (0.5: ``ome.version``; ≤ 0.4: the
        ``version`` of its multiscales, plate or well), or None."""
        version = self.ome.get("version")
        if version is None:
            for key in ("multiscales", "plate", "well"):
                node = self.ome.get(key)
                if isinstance(node, list) and node and isinstance(node[0], dict):
                    node = node[0]
                if isinstance(node, dict) and node.get("version") is not None:
                    version = node["version"]
                    break
        return None if version is None else str(version)

    def child_path(self, name: str) -> str:
        """Store path of a child of this group."""
        return f"{self.path}/{name}" if self.path else name

    def found(self) -> str:
        """What the group holds, for errors that say what was found there."""
        kind = "a Zarr array" if self.is_array else f"a Zarr v{self.zarr_format} group"
        keys = sorted(self.ome) if self.ome else []
        return f"{kind} with attributes {keys}" if keys else f"{kind} without OME metadata"


def _from_v3(doc: dict[str, Any], url: str, path: str) -> GroupMetadata:
    attrs = doc.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise MetadataError("attributes is not a JSON object", path=f"{url}/zarr.json")
    ome = attrs.get("ome")
    if ome is None:
        # pre-0.5 writers of Zarr v3 data put OME keys at the top level; read them there
        ome = {k: v for k, v in attrs.items() if k in OME_KEYS}
    if not isinstance(ome, dict):
        raise MetadataError('attributes["ome"] is not a JSON object', path=f"{url}/zarr.json")
    consolidated = None
    cm = doc.get("consolidated_metadata")
    if isinstance(cm, dict) and isinstance(cm.get("metadata"), dict):
        consolidated = {k: v for k, v in cm["metadata"].items() if isinstance(v, dict)}
    return GroupMetadata(3, url, path, attrs, ome, consolidated,
                         is_array=doc.get("node_type") == "array")


def check_zarr_format(zarr_format: int | None) -> None:
    """A ``zarr_format`` argument: 2, 3 or None (probe), else ArgumentError."""
    if zarr_format not in (None, 2, 3):
        raise ArgumentError(f"zarr_format must be 2, 3 or None, not {zarr_format!r}")


async def read_group_async(store: Store, path: str, zarr_format: int | None = None
                           ) -> GroupMetadata:
    """The metadata of the group at ``path`` in ``store``.

    ``zarr_format`` None probes ``zarr.json`` then ``.zattrs`` (one 404 for a v2 group);
    2 or 3 asks for that format's document only. A v2 group needs only ``.zattrs``: its
    ``.zgroup`` says nothing OME-Zarr needs, so it is never read.
    """
    check_zarr_format(zarr_format)
    prefix = f"{path}/" if path else ""
    url = f"{store.url}/{path}" if path else store.url
    if zarr_format in (None, 3):
        raw = await get_data(store, prefix + "zarr.json")
        if raw is not None:
            return _from_v3(parse_json(raw, f"{url}/zarr.json"), url, path)
    if zarr_format in (None, 2):
        raw = await get_data(store, prefix + ".zattrs")
        if raw is not None:
            attrs = parse_json(raw, f"{url}/.zattrs")
            return GroupMetadata(2, url, path, attrs, attrs)
    looked = {None: "zarr.json or .zattrs", 3: "zarr.json", 2: ".zattrs"}[zarr_format]
    raise NotFoundError(f"no Zarr group metadata at {url} (looked for {looked})", path=url)


def consolidated_child(group: GroupMetadata, name: str) -> dict[str, Any] | None:
    """A child's document from the group's consolidated metadata, if it has any."""
    if group.consolidated is None:
        return None
    return group.consolidated.get(name)


async def child_group_async(store: Store, parent: GroupMetadata, name: str) -> GroupMetadata:
    """The group ``name`` below ``parent``, in the parent's format: from the parent's
    consolidated metadata when it has some (no request; absent there means absent), else
    one GET."""
    path = parent.child_path(name)
    if parent.consolidated is None:
        return await read_group_async(store, path, parent.zarr_format)
    url = f"{parent.url}/{name}"
    doc = parent.consolidated.get(name)
    if doc is None:
        raise NotFoundError(f"no Zarr group at {url} (absent from the consolidated "
                            f"metadata of {parent.url})", path=url)
    inner = f"{name}/"
    group = _from_v3(doc, url, path)
    below = {k[len(inner):]: v for k, v in parent.consolidated.items() if k.startswith(inner)}
    return GroupMetadata(group.zarr_format, url, path, group.attributes, group.ome, below,
                         group.is_array)


__all__ = ["GroupMetadata", "check_zarr_format", "read_group_async", "child_group_async",
           "consolidated_child", "OME_KEYS"]
