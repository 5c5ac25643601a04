"""Our tags and WeCom's corp tags (企业标签), kept in step (WECOM.md §3.3, §4.5, §4.6).

Our tag (group, name) resolves to a corp tag id: the one it is linked to
(`Tag.platform_tag_id`) while WeCom still has it; else a corp tag of the same group and
name; else one of the same name in the configured sync group; else a new corp tag made
there. The id found is stored on our tag. The corp tag list is cached in memory and read
again only when a lookup misses or WeCom says tags changed (change_external_tag), never
on every mark.

The other way, a fresh list is applied to our linked tags: a corp tag renamed in WeCom
renames ours, and one deleted there unlinks ours and takes it from the members WeCom
gave it to (tags our rules gave stay ours).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.platforms.wecom.client import WeComClient
from storage.engine import SessionFactory
from storage.models import utcnow
from storage.platform_tags import link_tag, linked_tags, rename_tag, tag_named, unlink_tag
from storage.tags import ensure_tag

log = logging.getLogger(__name__)

MAX_TAG_NAME = 30  # characters, add_corp_tag's limit
TagName = tuple[str, str]  # (group, name), as in handlers.actions


class TagNameTooLong(ValueError):
    def __init__(self, name: str):
        super().__init__(
            f"tag {name!r} has {len(name)} characters: WeCom corp tag names are at most {MAX_TAG_NAME}, "
            "so it cannot be created in WeCom (shorten the tag's name in our rules)"
        )
        self.name = name


@dataclass(frozen=True, slots=True)
class CorpTag:
    id: str
    name: str
    group_id: str
    group_name: str


@dataclass(frozen=True, slots=True)
class ListApplied:
    renamed: int
    unlinked: int
    untagged: int  # member tags taken because their corp tag was deleted

    def __str__(self) -> str:
        return f"corp tags: {self.renamed} renamed, {self.unlinked} unlinked, {self.untagged} member tags removed"


def too_long(names: Iterable[TagName]) -> TagNameTooLong | None:
    return next((TagNameTooLong(name) for _, name in names if len(name) > MAX_TAG_NAME), None)


def corp_tags_in(tag_groups: Iterable[Mapping[str, Any]]) -> dict[str, CorpTag]:
    """The live corp tags of a get_corp_tag_list / add_corp_tag answer, by id."""
    found: dict[str, CorpTag] = {}
    for group in tag_groups:
        if group.get("deleted"):
            continue
        for tag in group.get("tag") or ():
            if tag.get("deleted") or not tag.get("id"):
                continue
            found[str(tag["id"])] = CorpTag(
                str(tag["id"]), str(tag.get("name", "")), str(group.get("group_id", "")), str(group.get("group_name", ""))
            )
    return found


class CorpTags:
    """One app's view of the corp tag list, and the links between it and our tags."""

    def __init__(self, client: WeComClient, sessions: SessionFactory, group: str):
        if not 0 < len(group) <= MAX_TAG_NAME:
            raise ValueError(f"the tag sync group needs 1..{MAX_TAG_NAME} characters")
        self.group = group
        self._client = client
        self._sessions = sessions
        self._known: dict[str, CorpTag] | None = None  # None: not read yet, or forgotten
        self._lock = asyncio.Lock()  # one resolution at a time: a new tag is created once
        self.lists_read = 0

    def forget(self) -> None:
        """Read the list again on the next lookup (an id we held was refused)."""
        self._known = None

    async def refresh(self) -> dict[str, CorpTag]:
        self._known = corp_tags_in(await self._client.get_corp_tag_list())
        self.lists_read += 1
        return self._known

    async def ids_for(self, names: Sequence[TagName], *, create: bool) -> list[str]:
        """Corp tag ids for our tags, linking each of ours to its id. With `create`, a tag
        WeCom lacks is created in the sync group; without, it is left out."""
        if create and (problem := too_long(names)):
            raise problem
        async with self._lock:
            ids = [await self._id_for(group, name, create) for group, name in names]
        return list(dict.fromkeys(i for i in ids if i))

    async def _id_for(self, group: str, name: str, create: bool) -> str | None:
        async with self._sessions() as session, session.begin():
            tag = await ensure_tag(session, name, group) if create else await tag_named(session, group, name)
            ours, linked = (tag.id, tag.platform_tag_id) if tag is not None else (None, None)
        found = self._match(linked, group, name) if self._known is not None else None
        if found is None:
            await self.refresh()  # a miss: the list may have moved on since we read it
            found = self._match(linked, group, name)
        if found is None and create:
            found = await self._create(name)
        if found is not None and ours is not None and found != linked:
            async with self._sessions() as session, session.begin():
                await link_tag(session, ours, found)
        return found

    def _match(self, linked: str | None, group: str, name: str) -> str | None:
        known = self._known or {}
        if linked and linked in known:
            return linked
        for wanted_group in (group, self.group):
            for corp in known.values():
                if corp.group_name == wanted_group and corp.name == name:
                    return corp.id
        return None

    async def _create(self, name: str) -> str:
        if len(name) > MAX_TAG_NAME:
            raise TagNameTooLong(name)
        created = corp_tags_in([await self._client.add_corp_tag(self.group, [name])])
        if self._known is not None:
            self._known.update(created)
        found = next((corp.id for corp in created.values() if corp.name == name), None)
        if found is None:
            raise ValueError(f"add_corp_tag answered without a tag named {name!r}")
        log.info("created WeCom corp tag %r in group %r (%s)", name, self.group, found)
        return found

    async def apply_list(self) -> ListApplied:
        """Read the corp tag list and bring our linked tags in line with it."""
        async with self._lock:
            known = await self.refresh()
            renamed = unlinked = untagged = 0
            async with self._sessions() as session, session.begin():
                for tag in await linked_tags(session):
                    assert tag.platform_tag_id is not None
                    corp = known.get(tag.platform_tag_id)
                    if corp is None:
                        log.info("WeCom corp tag %s of our tag %s/%s is gone: unlinking it",
                                 tag.platform_tag_id, tag.group, tag.name)
                        untagged += await unlink_tag(session, tag, utcnow())
                        unlinked += 1
                    elif corp.name != tag.name:
                        old = tag.name
                        if await rename_tag(session, tag, corp.name):
                            renamed += 1
                            log.info("WeCom corp tag %s renamed: our tag %s/%s is now %s", corp.id, tag.group, old, corp.name)
                        else:
                            log.warning(
                                "WeCom corp tag %s was renamed to %r, but our tag group %r already has a tag of that "
                                "name: our tag %r is left as it is", corp.id, corp.name, tag.group, old,
                            )
        return ListApplied(renamed, unlinked, untagged)
