"""The README's first commands are what a newcomer runs; CI must run exactly the test one."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```") + 1
    return lines[start : lines.index("```", start)]


def test_readme_opens_with_the_two_commands():
    main_job, tests = readme_commands()
    assert main_job.endswith("python -m kbmetal.bench")
    assert "pytest" in tests
    assert all(line.startswith("pip install") for line in (main_job, tests))


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == readme_commands()[1]
