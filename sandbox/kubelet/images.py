"""The kubelet's image manager (pkg/kubelet/images): make sure a container's image is on the node.

`ensure_image` follows ``EnsureImageExists``: a reference that does not parse is
``InvalidImageName`` (an ``InspectFailed`` event with the kubelet's message, then ``Failed``
``Error: InvalidImageName``); a missing image with ``imagePullPolicy: Never`` is
``ErrImageNeverPull``; otherwise the image is "pulled" from the node's store: present →
``Pulled``, absent → ``Failed`` / ``ErrImagePull`` then ``ImagePullBackOff`` with back-off
(5 s doubling to 40 s here). Every error the image path raises (`ImageError`) ends in one of
these waiting reasons, so the pod stays deletable. The spec is re-read on every attempt: a
pod whose image is fixed (``kubectl set image``) starts without being recreated.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from sandbox.images import Image, ImageError, InvalidReference, catalogue_image, normalize
from sandbox.record import NORMAL, WARNING

if TYPE_CHECKING:
    from sandbox.kubelet.container import ContainerRunner

PULL_BACKOFF = (5.0, 40.0)
INVALID_NAME_RETRY = 10.0


def backoff_delay(failures: int, base_max: tuple[float, float]) -> float:
    """``base * 2^(failures-1)`` capped: 0 before the first failure."""
    base, cap = base_max
    return 0.0 if failures <= 0 else min(base * 2 ** (failures - 1), cap)


def normalize_safe(ref: str) -> str:
    """``normalize`` that leaves a reference that does not parse as it is (for status.image)."""
    try:
        return normalize(ref)
    except ImageError:
        return ref


def pull_policy(container: dict) -> str:
    """The container's imagePullPolicy, defaulted as the API server does (``:latest`` → Always)."""
    ref = container.get("image") or ""
    default = "Always" if normalize_safe(ref).endswith(":latest") else "IfNotPresent"
    return container.get("imagePullPolicy") or default


def unavailable_hint(ref: str) -> str:
    """What to tell the learner about an image the node does not hold: the command that loads
    it when the machine has it, else why the sandbox cannot get it."""
    try:
        image = catalogue_image(ref)
    except ImageError:
        image = None
    if image is None:
        return (
            "the sandbox pulls from no registry and this image is not in its catalogue "
            "(`python -m sandbox image ls` lists the images it can run)"
        )
    why = image.missing()
    if why:
        return f"the sandbox makes this image from this machine's software, and {why}"
    return f"load it with `python -m sandbox image load {ref}`"


def pull(runner: ContainerRunner, ref: str) -> Image | None:
    """A pull: public catalogue images come onto the node by themselves; others do not."""
    try:
        image = catalogue_image(ref)
    except ImageError:
        return None
    if image is None or not image.public or image.missing():
        return None
    try:
        return runner.kubelet.images.load(ref, nodes=[runner.kubelet.node_name])
    except ImageError:
        return None


async def ensure_image(runner: ContainerRunner) -> Image | None:
    """The image to start ``runner``'s container with, or None once the pod stops trying."""
    failures = 0
    while not runner.stopping:
        spec = runner.current_spec()
        ref = spec.get("image") or ""
        try:
            normalize(ref)
        except InvalidReference as exc:
            message = f'Failed to apply default image tag "{ref}": {exc}'
            runner.event(WARNING, "InspectFailed", message)
            runner.event(WARNING, "Failed", "Error: InvalidImageName")
            runner.set_state({"waiting": {"reason": "InvalidImageName", "message": message}})
            await runner.worker.sleep(INVALID_NAME_RETRY)
            continue
        policy = pull_policy(spec)
        try:
            image = runner.kubelet.images.lookup(ref, node=runner.kubelet.node_name)
        except ImageError as exc:
            message = f'Failed to inspect image "{ref}": {exc}'
            runner.event(WARNING, "InspectFailed", message)
            runner.event(WARNING, "Failed", "Error: ImageInspectError")
            runner.set_state({"waiting": {"reason": "ImageInspectError", "message": message}})
            await runner.worker.sleep(INVALID_NAME_RETRY)
            continue
        if image is not None and policy != "Always":
            runner.event(NORMAL, "Pulled", f'Container image "{ref}" already present on machine')
            return image
        if image is None and policy == "Never":
            msg = f'Container image "{ref}" is not present with pull policy of Never'
            runner.set_state({"waiting": {"reason": "ErrImageNeverPull", "message": msg}})
            runner.event(WARNING, "ErrImageNeverPull", msg)
            failures += 1
            await runner.worker.sleep(backoff_delay(failures, PULL_BACKOFF))
            continue
        began = time.perf_counter()
        runner.event(NORMAL, "Pulling", f'Pulling image "{ref}"')
        image = image or pull(runner, ref)
        if image is not None:
            took = f"{(time.perf_counter() - began) * 1000:.0f}ms"
            runner.event(
                NORMAL,
                "Pulled",
                f'Successfully pulled image "{ref}" in {took} ({took} including '
                f"waiting). Image size: {image.size} bytes.",
            )
            return image
        failures += 1
        reason = (
            f'failed to pull and unpack image "{ref}": not found in the sandbox node\'s image store; '
            f"{unavailable_hint(ref)}"
        )
        runner.event(WARNING, "Failed", f'Failed to pull image "{ref}": {reason}')
        runner.event(WARNING, "Failed", "Error: ErrImagePull")
        runner.set_state({"waiting": {"reason": "ErrImagePull", "message": reason}})
        await runner.worker.sleep(1.0)
        if runner.stopping:
            return None
        backoff = f'Back-off pulling image "{ref}": ErrImagePull: {reason}'
        runner.set_state({"waiting": {"reason": "ImagePullBackOff", "message": backoff}})
        runner.event(NORMAL, "BackOff", f'Back-off pulling image "{ref}"')
        runner.event(WARNING, "Failed", "Error: ImagePullBackOff")
        await runner.worker.sleep(max(backoff_delay(failures, PULL_BACKOFF) - 1.0, 0.5))
    return None
