"""The dynamic batcher on a real ONNX Runtime session: results, ordering, limits, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from service.batcher import (
    BatcherClosed,
    DeadlineExceeded,
    DynamicBatcher,
    InferenceFailed,
    QueueFull,
)
from service.repository import ModelLocation, load_artifact
from service.runtime import OnnxModel, RuntimeOptions
from tests.service.conftest import items

pytestmark = pytest.mark.anyio


class CountingModel:
    """A real ORT model that records the size of every batch it runs."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.batches: list[int] = []

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return self.model.run(batch)


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> OnnxModel:
    from tests.model_factory import build_model_dir

    directory = build_model_dir(tmp_path_factory.mktemp("batcher"), name="b", version="1")
    artifact = load_artifact(ModelLocation("b", "1", Path(directory)))
    return OnnxModel.create(artifact, RuntimeOptions(("CPUExecutionProvider",), 1), 4)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(1) as pool:
        yield pool


@pytest.fixture
def make_batcher(
    onnx_model: OnnxModel, executor: ThreadPoolExecutor
) -> Callable[..., tuple[DynamicBatcher, CountingModel]]:
    def make(**options: float) -> tuple[DynamicBatcher, CountingModel]:
        counting = CountingModel(onnx_model)
        batcher = DynamicBatcher(
            run=counting.run,
            executor=executor,
            max_batch_size=int(options.get("max_batch_size", 8)),
            max_delay_s=options.get("max_delay_s", 0.01),
            max_queue_items=int(options.get("max_queue_items", 1000)),
            item_shape=(1, 28, 28),
        )
        batcher.start()
        return batcher, counting

    return make


def deadline(seconds: float = 5.0) -> float:
    return time.monotonic() + seconds


async def test_batched_results_equal_unbatched(make_batcher, onnx_model: OnnxModel) -> None:
    batcher, counting = make_batcher(max_batch_size=8, max_delay_s=0.05)
    requests = [items(n, seed=seed) for seed, n in enumerate([1, 3, 1, 2, 5, 1, 1, 4])]
    results = await asyncio.gather(*(batcher.submit(r, deadline()) for r in requests))
    assert max(counting.batches) > 1
    for request, result in zip(requests, results, strict=True):
        for item, row in zip(request, result, strict=True):
            # equal up to float32 rounding: ORT may pick other GEMM kernels for other batch sizes
            np.testing.assert_allclose(row, onnx_model.run(item[None])[0], rtol=0, atol=1e-5)
    await batcher.close()


async def test_large_request_is_split_across_batches_in_order(
    make_batcher, onnx_model: OnnxModel
) -> None:
    batcher, counting = make_batcher(max_batch_size=4)
    request = items(11)
    result = await batcher.submit(request, deadline())
    assert counting.batches == [4, 4, 3]
    np.testing.assert_allclose(result, onnx_model.run(request), rtol=0, atol=1e-5)
    await batcher.close()


async def test_batch_waits_at_most_max_delay(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=64, max_delay_s=0.05)
    start = time.monotonic()
    await batcher.submit(items(1), deadline())
    assert 0.04 <= time.monotonic() - start < 1.0
    assert counting.batches == [1]
    await batcher.close()


async def test_full_batch_does_not_wait_for_the_delay(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=4, max_delay_s=5.0)
    start = time.monotonic()
    await batcher.submit(items(4), deadline())
    assert time.monotonic() - start < 1.0
    assert counting.batches == [4]
    await batcher.close()


async def test_queue_full_refuses_without_disturbing_queued(make_batcher) -> None:
    batcher, _ = make_batcher(max_batch_size=64, max_delay_s=0.2, max_queue_items=5)
    first = asyncio.ensure_future(batcher.submit(items(4), deadline()))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await batcher.submit(items(2), deadline())
    assert len(await first) == 4
    assert batcher.queued_items == 0
    await batcher.close()


async def test_deadline_drops_the_request_from_the_queue(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=64, max_delay_s=0.3)
    with pytest.raises(DeadlineExceeded):
        await batcher.submit(items(3), time.monotonic() + 0.05)
    assert batcher.queued_items == 0
    await asyncio.sleep(0.4)
    assert counting.batches == []  # never ran
    await batcher.close()


async def test_cancelled_caller_costs_no_inference(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=64, max_delay_s=0.1)
    waiting = asyncio.ensure_future(batcher.submit(items(2), deadline()))
    await asyncio.sleep(0.01)
    assert batcher.queued_items == 2
    waiting.cancel()
    await asyncio.sleep(0.2)
    assert batcher.queued_items == 0
    assert counting.batches == []
    assert len(await batcher.submit(items(1), deadline())) == 1  # still serving
    await batcher.close()


async def test_failed_run_fails_only_its_batch(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=4, max_delay_s=0.01)
    broken = counting.run

    def fail_on_marker(batch: np.ndarray) -> np.ndarray:
        if np.any(batch == 1234.0):
            raise RuntimeError("poisoned batch")
        return broken(batch)

    batcher.run = fail_on_marker
    poison = items(1)
    poison[0, 0, 0, 0] = 1234.0
    with pytest.raises(InferenceFailed):
        await batcher.submit(poison, deadline())
    assert len(await batcher.submit(items(2), deadline())) == 2
    await batcher.close()


async def test_real_runtime_error_is_contained(onnx_model: OnnxModel, executor) -> None:
    """A genuine ONNX Runtime failure (wrong shape, batcher unchecked) fails only that request."""
    batcher = DynamicBatcher(onnx_model.run, executor, 8, 0.0, 100)  # no item_shape check
    batcher.start()
    with pytest.raises(InferenceFailed):
        await batcher.submit(items(1, shape=(1, 28, 27)), deadline())
    assert len(await batcher.submit(items(1), deadline())) == 1
    await batcher.close()


async def test_wrong_item_shape_is_refused_at_submit(make_batcher) -> None:
    batcher, _ = make_batcher()
    with pytest.raises(ValueError, match="shape"):
        await batcher.submit(items(1, shape=(1, 28, 27)), deadline())
    await batcher.close()


async def test_close_fails_queued_requests(make_batcher) -> None:
    batcher, counting = make_batcher(max_batch_size=64, max_delay_s=5.0)
    waiting = asyncio.ensure_future(batcher.submit(items(2), deadline(10)))
    await asyncio.sleep(0.01)
    await batcher.close()
    with pytest.raises(BatcherClosed):
        await waiting
    with pytest.raises(BatcherClosed):
        await batcher.submit(items(1), deadline())
    assert counting.batches == []


def hold_first_run(
    batcher: DynamicBatcher, counting: CountingModel
) -> tuple[asyncio.Event, threading.Event]:
    """Make the first run block in the worker: (set once it runs, set to let it finish)."""
    first_running = asyncio.Event()
    release = threading.Event()
    loop = asyncio.get_running_loop()
    plain = counting.run

    def slow_first(batch: np.ndarray) -> np.ndarray:
        if not counting.batches:
            loop.call_soon_threadsafe(first_running.set)
            release.wait(5)
        return plain(batch)

    batcher.run = slow_first
    return first_running, release


async def wait_all_taken(batcher: DynamicBatcher) -> None:
    for _ in range(50):
        await asyncio.sleep(0.005)
        if batcher.queued_items == 0:
            return


async def test_next_batch_is_formed_while_one_runs(make_batcher) -> None:
    """Pipelining: a second full batch reaches the worker while the first still runs."""
    batcher, counting = make_batcher(max_batch_size=2, max_delay_s=0.0)
    first_running, release = hold_first_run(batcher, counting)
    first = asyncio.ensure_future(batcher.submit(items(2), deadline()))
    await first_running.wait()
    second = asyncio.ensure_future(batcher.submit(items(2), deadline()))
    await wait_all_taken(batcher)
    assert batcher.queued_items == 0  # taken although the first batch has not returned
    release.set()
    assert len(await first) == 2 and len(await second) == 2
    assert counting.batches == [2, 2]
    await batcher.close()


async def test_request_cancelled_while_its_batch_waits_is_not_run(make_batcher) -> None:
    """A batch waiting behind a running one leaves out requests cancelled meanwhile."""
    batcher, counting = make_batcher(max_batch_size=2, max_delay_s=0.0)
    first_running, release = hold_first_run(batcher, counting)
    first = asyncio.ensure_future(batcher.submit(items(2), deadline()))
    await first_running.wait()
    cancelled = asyncio.ensure_future(batcher.submit(items(1, seed=1), deadline()))
    kept = asyncio.ensure_future(batcher.submit(items(1, seed=2), deadline()))
    await wait_all_taken(batcher)
    assert batcher.queued_items == 0  # both taken into the waiting batch
    cancelled.cancel()
    await asyncio.sleep(0.01)
    release.set()
    assert len(await first) == 2 and len(await kept) == 1
    assert counting.batches == [2, 1]  # the cancelled item never ran
    await batcher.close()
