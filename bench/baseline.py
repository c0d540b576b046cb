"""A baseline: tailhub as it was at a git revision, run beside the working tree's tailhub.

On a shared, noisy machine a change in speed can only be judged as a ratio measured in one
run, round by round. ``--baseline REF`` checks REF out read-only into a temporary, detached
git worktree and runs its server as one more server under test, ``tailhub@<short sha>``,
started exactly as ``tailhub`` is but with the worktree's ``src`` first on PYTHONPATH, so
that it imports REF's code instead of the working tree's editable install. Everything else
is the current venv's: a REF that needs other dependencies is out of scope (its server then
fails to start, as any server can).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.servers import ROOT, ServerSpec, tailhub_specs

__all__ = ["BASELINE_PREFIX", "BaselineError", "Revision", "checked_out", "resolve"]

BASELINE_PREFIX = "tailhub@"  # a baseline server's name: the prefix, then the short sha


class BaselineError(RuntimeError):
    """The baseline cannot be used: not a git repository, an unknown REF, a failed checkout."""


@dataclass(frozen=True, slots=True)
class Revision:
    """The commit a ``--baseline REF`` names."""

    ref: str
    sha: str
    short: str

    @property
    def name(self) -> str:
        """The server's name in tables, JSON and the chart."""
        return f"{BASELINE_PREFIX}{self.short}"

    @property
    def label(self) -> str:
        return f"tailhub at {self.ref} ({self.short})"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BaselineError(f"cannot run git: {exc}") from exc


def resolve(ref: str, repo: Path = ROOT) -> Revision:
    """The commit ``ref`` names in ``repo`` (any revision git knows: sha, tag, HEAD~3, branch).

    Raises :class:`BaselineError` when ``repo`` is not a git repository or ``ref`` names no
    commit there.
    """
    if _git(repo, "rev-parse", "--git-dir").returncode != 0:
        raise BaselineError(f"--baseline needs a git repository: {repo} is not in one")
    found = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    sha = found.stdout.strip()
    if found.returncode != 0 or not sha:
        raise BaselineError(f"--baseline {ref}: no such commit in {repo}")
    short = _git(repo, "rev-parse", "--short", sha).stdout.strip() or sha[:7]
    return Revision(ref, sha, short)


def _imported_from(spec: ServerSpec) -> Path:
    """Where ``spec``'s server would import tailhub from: same interpreter, cwd and env."""
    done = subprocess.run(
        [sys.executable, "-c", "import tailhub; print(tailhub.__file__)"],
        cwd=ROOT,
        env=spec.environ(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        raise BaselineError(f"{spec.name} cannot import tailhub: {tail}")
    return Path(lines[-1]).resolve()


def _remove(repo: Path, worktree: Path) -> None:
    removed = _git(repo, "worktree", "remove", "--force", str(worktree))
    shutil.rmtree(worktree, ignore_errors=True)
    if removed.returncode != 0 and "is not a working tree" not in removed.stderr:
        print(
            f"bench: could not remove the baseline worktree {worktree}: "
            f"{removed.stderr.strip()} (git worktree prune forgets it)",
            file=sys.stderr,
        )


@contextmanager
def checked_out(revision: Revision, repo: Path = ROOT) -> Iterator[dict[str, ServerSpec]]:
    """Check ``revision`` out into a temporary worktree; yield its servers' specs.

    The specs are the baseline's tailhub (SQLite history) and its in-memory twin, named after
    :attr:`Revision.name`. Before yielding, checks that their interpreter imports tailhub from
    the worktree, not from the working tree. The worktree is removed on the way out, also on
    an error or Ctrl-C. Raises :class:`BaselineError` when the checkout or that check fails.
    """
    worktree = Path(tempfile.mkdtemp(prefix=f"bench-baseline-{revision.short}-"))
    try:
        added = _git(repo, "worktree", "add", "--detach", str(worktree), revision.sha)
        if added.returncode != 0:
            raise BaselineError(f"git worktree add failed: {added.stderr.strip()}")
        specs = tailhub_specs(revision.name, revision.label, worktree / "src")
        imported = _imported_from(specs[revision.name])
        if not imported.is_relative_to(worktree.resolve()):
            raise BaselineError(
                f"{revision.name} would import tailhub from {imported}, not from its checkout "
                f"{worktree}: has {revision.ref} a src/tailhub package?"
            )
        yield specs
    finally:
        _remove(repo, worktree)
