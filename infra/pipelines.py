"""The pipeline configs a stack deploys, loaded and checked together."""

from __future__ import annotations

import glob
from pathlib import Path

from osbatch.infra_facts import ConfigError, PipelineConfig, load_pipeline

DEFAULT_PATTERN = "pipelines/*.yaml"


def load_pipelines(pattern: str = DEFAULT_PATTERN, root: Path | None = None) -> list[PipelineConfig]:
    """Every config matching the glob (relative to root), in file-name order; errors name file and field."""
    base = root or Path.cwd()
    paths = sorted(Path(path) for path in glob.glob(str(base / pattern)))  # an absolute pattern ignores base
    if not paths:
        raise ConfigError(f"no pipeline configs match '{pattern}' (context 'pipelines', relative to {base})")
    configs = [load_pipeline(path) for path in paths]
    check_together(configs)
    return configs


def check_together(configs: list[PipelineConfig]) -> None:
    """Names must be unique: they name rules, jobs and metrics. Nested prefixes are fine (submit routes an
    object to the longest matching prefix, and both rules' events resolve to the same job id)."""
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"pipeline names must be unique; repeated: {', '.join(duplicates)}")
