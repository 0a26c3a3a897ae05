"""Pure functions of moto and its libraries, computed once per argument.

Found by profiling releases in the embedded AWS (a sampling profiler over every thread):
- moto's Step Functions interpreter parses every JSONPath it meets with jsonpath_ng,
  whose parser builds its grammar tables anew on each call (about a tenth of a release's
  CPU). A parsed path is never changed by finding or updating with it.
- the server lists moto's package folder on every request to match the host to a
  service (`list_of_moto_modules`); the folder does not change while it runs.
- EC2 finds an instance by id by walking every reservation; Auto Scaling and the
  application model ask for each registered target every simulated minute, and moto
  never deregisters a terminated instance, so a long-lived sandbox paid more each
  minute than the last. Here the walk fills an index once; an instance is the same
  object for its whole life (terminated ones stay in their reservation), so the index
  answers what the walk would.
- moto's mock starts each world with no default boto3 session, so every test's first
  client of a service made a new botocore session whose loader parsed the service's
  model (JSON, over a megabyte for EC2) again: about a sixth of a local test module's
  time. Sessions here share one loader per data path; botocore already shares a
  loader's parsed models between the clients of a session, which only read them.
None of these changes what any API answers.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from typing import Any

import botocore.session
import jsonpath_ng
import jsonpath_ng.ext
from moto import backends
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.utils import json_path


@functools.lru_cache(maxsize=4096)
def _parse_ext(path: str) -> Any:
    return jsonpath_ng.ext.parse(path)


@functools.lru_cache(maxsize=4096)
def _parse(path: str) -> Any:
    return jsonpath_ng.parse(path)


@functools.cache
def _moto_modules() -> frozenset[str]:
    return frozenset(_list_of_moto_modules())


_list_of_moto_modules = backends.list_of_moto_modules


def _modules() -> Iterable[str]:
    return _moto_modules()


_by_id = weakref.WeakKeyDictionary[InstanceBackend, dict[str, Instance]]()


def _get_instance_by_id(self: InstanceBackend, instance_id: str) -> Instance | None:
    index = _by_id.setdefault(self, {})
    if instance_id not in index:
        index.update(
            (instance.id, instance)
            for reservation in self.all_reservations()
            for instance in reservation.instances
        )
    return index.get(instance_id)


_create_loader = botocore.session.create_loader


@functools.cache
def _shared_loader(search_path: str | None) -> Any:
    return _create_loader(search_path)


@functools.cache
def install() -> None:
    json_path.parse = _parse_ext
    result_path.parse = _parse
    backends.list_of_moto_modules = _modules
    InstanceBackend.get_instance_by_id = _get_instance_by_id  # type: ignore[method-assign]
    botocore.session.create_loader = _shared_loader
