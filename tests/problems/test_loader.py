"""Loading problem files: ids, metadata, presets and overrides, and the errors for broken files."""

import pathlib
import pickle
import textwrap

import pytest
import torch

from kbmetal.problems import (
    ProblemError,
    find_problem,
    load_problem,
    load_problems,
    parse_size_overrides,
    problem_files,
    problems_root,
)
from kbmetal.problems import ids

from problem_sources import RELU

WITH_METADATA = """
    import torch
    import torch.nn as nn

    BATCH = 32
    CHANNELS = 8
    bias_shape = (CHANNELS, 1, 1)

    class Model(nn.Module):
        def __init__(self, channels, shape):
            super().__init__()
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)
            self.bias = nn.Parameter(torch.randn(shape))

        def forward(self, x, labels):
            return self.conv(x) + self.bias + labels.float().mean()

    def get_inputs():
        return [torch.randn(BATCH, CHANNELS, 10, 10), torch.randint(0, 5, (BATCH,))]

    def get_init_inputs():
        return [CHANNELS, bias_shape]

    CATEGORY = "conv"
    DTYPES = ("float32", "float16")
    INPUT_DOMAINS = {1: "fixed"}
    PRESETS = {"small": {"BATCH": 2, "CHANNELS": 4}, "heldout": {"BATCH": 3, "CHANNELS": 6}}
"""


def test_ids_come_from_folder_and_leading_number():
    assert ids.problem_id(pathlib.Path("problems/level1/019_relu.py")) == "L1-019"
    assert ids.problem_id(pathlib.Path("KernelBench/level1/19_ReLU.py")) == "L1-019"
    assert ids.problem_id(pathlib.Path("KernelBench/level4/3_gpt2.py")) == "L4-003"
    assert ids.problem_id(pathlib.Path("mine/7_thing.py")) == "L0-007"
    assert ids.problem_id(pathlib.Path("level2/no_number.py")) == "no_number"
    assert ids.parse_id("l2-5") == (2, 5)
    assert ids.parse_id("019_relu") is None
    assert [ids.parse_level(x) for x in ("1", "L1", "level1", 1, "x")] == [1, 1, 1, 1, None]


def test_upstream_style_file_loads_with_defaults(write_problem):
    problem = load_problem(write_problem(RELU, name="19_ReLU.py"))
    assert (problem.id, problem.level, problem.name) == ("L1-019", 1, "19_ReLU")
    assert problem.constants() == {"batch_size": 64, "dim": 256}
    assert problem.presets == {} and problem.input_domains == {} and problem.category is None
    assert problem.dtypes == ("float32",)
    assert problem.source.startswith("\nimport torch")


def test_metadata_is_read(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    assert problem.category == "conv"
    assert problem.dtypes == ("float32", "float16")
    assert problem.input_domains == {1: "fixed"}
    assert set(problem.presets) == {"small", "heldout"}
    assert problem.constants() == {"BATCH": 32, "CHANNELS": 8, "bias_shape": (8, 1, 1)}


def test_preset_reaches_derived_constants_and_functions(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    inst = problem.instantiate("small")
    assert inst.preset == "small"
    # bias_shape is computed from CHANNELS when the module runs: it must follow the preset
    assert inst.sizes == {"BATCH": 2, "CHANNELS": 4, "bias_shape": (4, 1, 1)}
    model = inst.make_model(seed=0)
    x, labels = inst.make_inputs(seed=0)
    assert x.shape == (2, 4, 10, 10) and labels.shape == (2,)
    assert model(x, labels).shape == (2, 4, 10, 10)
    # instances are independent namespaces
    assert problem.instantiate("heldout").sizes["bias_shape"] == (6, 1, 1)
    assert problem.instantiate().sizes["BATCH"] == 32


def test_overrides_apply_on_top_of_a_preset(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    inst = problem.instantiate("small", overrides={"BATCH": 5})
    assert inst.sizes["BATCH"] == 5 and inst.sizes["CHANNELS"] == 4
    assert inst.preset is None  # no longer the preset's sizes
    assert problem.instantiate({"CHANNELS": 3}).sizes["bias_shape"] == (3, 1, 1)


def test_unknown_override_lists_the_constants(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    with pytest.raises(ProblemError) as err:
        problem.instantiate(overrides={"batch": 4})
    message = str(err.value)
    assert "batch" in message and "BATCH=32" in message and "CHANNELS=8" in message
    assert str(problem.path) in message


def test_unknown_preset_names_the_presets(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    with pytest.raises(ProblemError, match="no size preset 'huge'.*small, heldout"):
        problem.instantiate("huge")


def test_small_falls_back_to_auto_small_without_a_preset(write_problem):
    problem = load_problem(write_problem(RELU.replace("dim = 256", "dim = 1 << 22")))
    inst = problem.instantiate("small")
    assert inst.preset == "auto-small"
    assert inst.sizes["dim"] < 1 << 22
    with pytest.raises(ProblemError, match="no size preset 'heldout'"):
        problem.instantiate("heldout")


def test_dtype_must_be_declared(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    inst = problem.instantiate("small", dtype="float16")
    assert inst.make_inputs(0)[0].dtype == torch.float16
    assert inst.make_inputs(0)[1].dtype == torch.int64  # integer inputs are never cast
    assert inst.make_model(0).conv.weight.dtype == torch.float16
    with pytest.raises(ProblemError, match="bfloat16.*add it to the file's DTYPES"):
        problem.instantiate(dtype="bfloat16")
    # a file without DTYPES (upstream) may run in the common float types
    upstream = load_problem(write_problem(RELU, name="002_relu.py"))
    assert upstream.instantiate(dtype="bfloat16").make_inputs(0)[0].dtype == torch.bfloat16


def test_make_model_is_seeded_and_leaves_global_rng_alone(write_problem):
    inst = load_problem(write_problem(WITH_METADATA)).instantiate("small")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = inst.make_model(7), inst.make_model(7), inst.make_model(8)
    assert torch.equal(torch.rand(3), expected_next)
    assert torch.equal(a.conv.weight, b.conv.weight)
    assert not torch.equal(a.conv.weight, c.conv.weight)
    # the KernelBench recipe: seed, get_init_inputs, seed, construct
    torch.manual_seed(7)
    init = inst.module.get_init_inputs()
    torch.manual_seed(7)
    assert torch.equal(inst.module.Model(*init).conv.weight, a.conv.weight)


def test_future_annotations_and_chained_assignments(write_problem):
    source = """
        from __future__ import annotations
        import torch
        import torch.nn as nn

        height = width = 16
        D, H = 3, 40

        class Model(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x * 2

        def get_inputs():
            return [torch.randn(D, H, height, width)]

        def get_init_inputs():
            return []
    """
    problem = load_problem(write_problem(source))
    assert problem.constants() == {"height": 16, "width": 16, "D": 3, "H": 40}
    inst = problem.instantiate({"width": 5, "H": 7})
    assert inst.make_inputs(0)[0].shape == (3, 7, 16, 5)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import torch\ndef get_inputs(:\n", "syntax error on line 2"),
        ("import torch\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n", "defines no Model class"),
        (
            "import torch.nn as nn\nclass Model(nn.Module): pass\ndef get_init_inputs(): return []\n",
            r"defines no get_inputs\(\)",
        ),
        (
            "import torch.nn as nn\nclass Model(nn.Module): pass\ndef get_inputs(): return []\n",
            r"defines no get_init_inputs\(\)",
        ),
        (
            "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\n",
            "Model is not a torch.nn.Module subclass",
        ),
        ("import torch\nx = 1 / 0\n", r"the module raised ZeroDivisionError: division by zero \(line 2\)"),
        ("import not_a_real_package_xyz\n", "pip install not_a_real_package_xyz"),
    ],
)
def test_broken_files_name_the_file_and_the_cause(write_problem, source, message):
    path = write_problem(source)
    with pytest.raises(ProblemError, match=message) as err:
        load_problem(path)
    assert str(path) in str(err.value) and err.value.path == path


BASE = textwrap.dedent(RELU).rstrip() + "\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('CATEGORY = "matmull"', "CATEGORY 'matmull' is not one of"),
        ('INPUT_DOMAINS = {0: "postive"}', r"INPUT_DOMAINS\[0\] = 'postive' is not one of"),
        ('INPUT_DOMAINS = {"x": "real"}', "is not an input index"),
        ('DTYPES = ("float32", "fp8")', "DTYPES names 'fp8'"),
        ('DTYPES = "float32"', "DTYPES must be a non-empty tuple"),
        ('PRESETS = {"small": {"batch": 2}}', "preset 'small' sets batch, which the file does not define"),
        ('PRESETS = {"auto-small": {"dim": 2}}', "reserved"),
        ("PRESETS = [1]", "PRESETS must map preset names to dicts"),
    ],
)
def test_bad_metadata_is_an_error(write_problem, extra, message):
    with pytest.raises(ProblemError, match=message):
        load_problem(write_problem(BASE + extra))


def test_errors_in_get_inputs_and_constructor_are_problem_errors(write_problem):
    source = """
        import torch
        import torch.nn as nn

        n = 4

        class Model(nn.Module):
            def __init__(self, k):
                super().__init__()
                if k < 0:
                    raise ValueError("k must be non-negative")

            def forward(self, x):
                return x

        def get_inputs():
            raise RuntimeError("no inputs today")

        def get_init_inputs():
            return [n]
    """
    problem = load_problem(write_problem(source))  # loading does not call get_inputs
    inst = problem.instantiate()
    with pytest.raises(ProblemError, match=r"get_inputs\(\) raised RuntimeError: no inputs today \(line 17\)"):
        inst.make_inputs(0)
    with pytest.raises(ProblemError, match=r"Model\(\*get_init_inputs\(\)\) raised ValueError"):
        problem.instantiate({"n": -1}).make_model(0)


def test_get_inputs_must_return_a_list(write_problem):
    inst = load_problem(write_problem(RELU.replace("return [torch.randn(batch_size, dim)]", "return 3"))).instantiate()
    with pytest.raises(ProblemError, match=r"get_inputs\(\) returned int; it must return a list"):
        inst.make_inputs(0)


def test_input_domains_beyond_the_inputs_are_an_error(write_problem):
    inst = load_problem(write_problem(BASE + 'INPUT_DOMAINS = {3: "positive"}')).instantiate()
    with pytest.raises(ProblemError, match="INPUT_DOMAINS names input 3, but get_inputs\\(\\) returns 1"):
        inst.make_inputs(0)


def test_problems_pickle_by_source(write_problem):
    problem = load_problem(write_problem(WITH_METADATA))
    copy = pickle.loads(pickle.dumps(problem))
    assert copy == problem and copy.presets == problem.presets
    assert copy.instantiate("small").sizes == problem.instantiate("small").sizes


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ProblemError, match="no such problem file"):
        load_problem(tmp_path / "nope.py")


def test_folders_levels_and_lookup(write_problem, tmp_path, monkeypatch):
    write_problem(RELU, name="2_b.py")
    write_problem(RELU, name="10_c.py")
    write_problem(RELU, name="1_a.py")
    write_problem(RELU, name="5_x.py", level="level2")
    (tmp_path / "level1" / "__init__.py").write_text("")
    assert [p.id for p in load_problems(tmp_path / "level1")] == ["L1-001", "L1-002", "L1-010"]
    # a checkout root: its level folders
    assert [p.id for p in load_problems(tmp_path)] == ["L1-001", "L1-002", "L1-010", "L2-005"]
    monkeypatch.setenv("KBMETAL_PROBLEMS_DIR", str(tmp_path))
    assert problems_root() == tmp_path
    assert [p.id for p in load_problems("L2")] == ["L2-005"]
    assert len(load_problems(None)) == 4
    assert find_problem("L1-010").name == "10_c"
    assert find_problem("2_b").id == "L1-002"
    assert find_problem(str(tmp_path / "level2" / "5_x.py")).id == "L2-005"
    with pytest.raises(ProblemError, match="no problem L1-099"):
        find_problem("L1-099")
    with pytest.raises(ProblemError, match="no such problem"):
        find_problem("nothing_here")
    with pytest.raises(ProblemError, match="no level 7"):
        problem_files("level7")
    with pytest.raises(ProblemError, match="no such file or folder"):
        problem_files(str(tmp_path / "missing"))


def test_our_set_is_found_from_the_checkout(monkeypatch):
    monkeypatch.delenv("KBMETAL_PROBLEMS_DIR", raising=False)
    assert (problems_root() / "level1").is_dir()
    assert find_problem("L1-012").name == "012_relu"


def test_parse_size_overrides():
    assert parse_size_overrides(["a=3", "shape=(2, 5)", "eps=1e-3"]) == {"a": 3, "shape": (2, 5), "eps": 1e-3}
    with pytest.raises(ValueError, match="is not NAME=VALUE"):
        parse_size_overrides(["a"])
    with pytest.raises(ValueError, match="not a Python literal"):
        parse_size_overrides(["a=foo"])
