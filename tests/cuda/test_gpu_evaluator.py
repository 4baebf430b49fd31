"""The evaluator on CUDA: its timing (events, the side-stream check, L2 flush, no TF32) and the
bundled CUDA solutions passing judgement (at the small sizes; the benchmark judges them at the
default sizes, with timing)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from solution_sources import all_solutions  # noqa: E402

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def timing():
    from kbmetal.evaluator.cuda_timing import CudaTiming

    return CudaTiming()


def test_timing_is_the_cuda_one_and_float32_means_float32(timing):
    from kbmetal.evaluator.timing import timing_for

    assert type(timing_for("cuda")).__name__ == "CudaTiming"
    assert timing.is_performance and timing.method.startswith("cuda-events")
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    l2 = torch.cuda.get_device_properties(0).L2_cache_size
    assert timing._flush_buffer.numel() * 4 >= 2 * l2


def test_work_on_the_current_stream_is_timed(timing):
    short = timing.time_call(lambda: torch.cuda._sleep(1_000_000))
    long = timing.time_call(lambda: torch.cuda._sleep(20_000_000))
    assert 0 < short < long
    assert timing.side_work_runs == 0


def test_work_hidden_on_another_stream_is_charged(timing):
    side = torch.cuda.Stream()
    plain = timing.time_call(lambda: torch.cuda._sleep(20_000_000))

    def hidden():
        with torch.cuda.stream(side):
            torch.cuda._sleep(20_000_000)

    charged = timing.time_call(hidden)
    assert timing.side_work_runs == 1
    assert charged > 0.5 * plain  # without the check the current stream's interval is ~0


@pytest.fixture(scope="module")
def judge():
    from kbmetal.evaluator.judge import Judge
    from kbmetal.evaluator.options import EvalOptions

    with Judge(EvalOptions(timing=False), prestart=True) as j:
        yield j


@pytest.mark.parametrize("path", all_solutions(), ids=lambda p: p.stem)
def test_bundled_solution_passes(judge, path):
    verdict = judge.evaluate(path.stem, path.read_text(), "cuda", sizes="small")
    assert verdict.passed, f"{verdict.stage}: {verdict.reason}\n{verdict.log_tail[-2000:]}"
