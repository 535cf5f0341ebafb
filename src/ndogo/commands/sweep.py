"""`ndogo sweep`: every cell of a grid, one row per cell in the result store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ndogo.commands._common import quiet_libraries, user_errors


@user_errors
def sweep(
    config: Annotated[Path, typer.Argument(help="A sweep config (.toml/.yaml): models, languages, recipes, seeds.")],
    out: Annotated[Path, typer.Option(help="Sweep directory: results.sqlite (one row per cell), artifacts/, logs/.")],
    data: Annotated[str | None, typer.Option(help="Local corpus folder (<data>/<lang>/<split>.txt or .tsv: any task's) or hub corpus; wins over the config's `data`, then $NDOGO_DATA, then the hub.")] = None,
    executor: Annotated[str, typer.Option(help="local (one cell at a time here) or ray (cells as Ray tasks).")] = "local",
    resume: Annotated[bool, typer.Option(help="Continue a sweep in --out: finished cells are kept, the rest run.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="A Ray cluster to join (e.g. auto or ray://head:10001); default: a local instance.")] = None,
    device: Annotated[str, typer.Option(help="Where cells train and evaluate: auto (CUDA when the cell has a GPU, else the CPU), cpu, cuda or cuda:N. A stage's own device option wins.")] = "auto",
    progress: Annotated[bool, typer.Option(help="Show the progress bar (a line per finished cell is always printed).")] = True,
    lang: Annotated[str | None, typer.Option(help="Only these of the config's languages (comma-separated, e.g. swa,yor), "
                                             "to split a sweep over sessions; a cell's id and row do not change. A language the config "
                                             "does not list runs with its recipes and seeds when --data holds its folder.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Only these of the config's recipes (comma-separated; the baseline "
                                               "comes along where they need it), e.g. to run one recipe beside a sweep "
                                               "in another --out.")] = None,
    seed: Annotated[str | None, typer.Option(help="Only these of the config's seeds (comma-separated, e.g. 42 or 1,2), "
                                             "to run one seed of every cell first; a cell's id and row do not change.")] = None,
    plan: Annotated[bool, typer.Option("--plan", help="Run nothing: list every cell with its status in --out (done, "
                                       "failed, to run) and, from the cells --out already finished, about how long "
                                       "the rest take. Creates nothing.")] = False,
) -> None:
    """Run every cell (model × language × recipe × seed) of a grid and store one row per cell.

    Killed at any moment (even kill -9), the same command with --resume finishes the
    sweep: done cells are not rerun, none is lost or duplicated. A failed cell is
    stored with its error and the others go on. The whole config is checked first.

    It prints where the logs are, then a line for each training epoch and each cell as it
    finishes, with the time left (plain lines when written to a file; on a terminal, above a
    progress bar). Each cell's full output is in <out>/logs/<cell id>.log.

    Example (the quickstart: about 15 minutes on a 2-core CPU with a core to itself; it runs on
    one thread, so on a busy machine longer in proportion, up to an hour):

      ndogo sweep configs/quickstart.toml --data ../shared/data/masakhaner --out runs/sweeps/quickstart

    then: ndogo report runs/sweeps/quickstart --out runs/sweeps/quickstart/report

    Before spending hours, `--plan` lists what the same command would build and, once --out
    holds timed cells, about how long the rest take.
    """
    quiet_libraries()
    from ndogo.experiments.config import load_sweep_config
    from ndogo.experiments.sweep import run_sweep

    only = None if lang is None else [x.strip() for x in lang.split(",") if x.strip()]
    seeds = None
    if seed is not None:  # a malformed option is named before the config is read
        try:
            seeds = [int(x) for x in seed.split(",") if x.strip()]
        except ValueError:
            raise typer.BadParameter(f"expected whole numbers separated by commas, got {seed!r}",
                                     param_hint="--seed") from None
    # on a Ray cluster a cell may ask for more than this machine (the head node) has
    cfg = load_sweep_config(config, data, only, this_machine=ray_address is None)
    if recipe is not None:
        cfg = cfg.only_recipes([x.strip() for x in recipe.split(",") if x.strip()])
    if seeds is not None:
        cfg = cfg.only_seeds(seeds)
    if plan:
        _print_plan(cfg, out)
        return
    summary = run_sweep(cfg, out, executor=executor, resume=resume, ray_address=ray_address,
                        show_progress=progress, device=device)
    typer.echo(f"{summary.done} of {summary.total} cells done, {summary.failed} failed ({summary.seconds / 60:.1f} min); results in "
               f"{Path(summary.directory) / 'results.sqlite'}")
    for failure in summary.failures:
        typer.echo(f"  failed: {failure}")
    if summary.failed:
        if all("its baseline learned nothing" in f for f in summary.failures):
            typer.echo("these cells stay not run on --resume: their baseline found no entity; use a model "
                       "that reads the language, or set [evaluate] skip_empty_baselines = false")
        elif all("its baseline learned nothing" in f or "too weak to compress" in f for f in summary.failures):
            typer.echo("these cells stay not run on --resume: their baseline is under the config's "
                       "min_baseline_dev_f1; train it longer, or lower the floor")
        else:
            typer.echo(f"fix the cause and rerun with --resume to retry the failed cells: ndogo sweep {config} "
                       f"--out {out} --resume")
        raise typer.Exit(1)


def _print_plan(cfg: object, out: Path) -> None:
    """`--plan`: a line per cell (its status, the stages it would build, about how long), then the total."""
    from ndogo.experiments.sweep import _duration, plan_sweep

    planned = plan_sweep(cfg, out)  # type: ignore[arg-type]
    width = max(len(p.cell.label()) for p in planned) if planned else 0
    for p in planned:
        what = "" if p.status == "done" else \
            f"  builds {' + '.join(p.to_build) if p.to_build else 'nothing (every stage is built): evaluates'}" + \
            (f", ~{_duration(p.estimate)}" if p.estimate is not None else ", not yet timed here")
        typer.echo(f"{p.status:<8} {p.cell.label():<{width}}{what}")
    left = [p for p in planned if p.status != "done"]
    timed = [p.estimate for p in left if p.estimate is not None]
    counts = {s: sum(p.status == s for p in planned) for s in ("done", "failed", "running", "to run")}
    typer.echo(f"{len(planned)} cells in {out}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if left:
        untimed = len(left) - len(timed)
        typer.echo(f"left: ~{_duration(sum(timed))} on one worker, from the stages this store already timed"
                   + (f"; + {untimed} cell(s) with a stage never timed here" if untimed else ""))


def register(app: typer.Typer) -> None:
    """Add `ndogo sweep` to the `ndogo` app."""
    app.command("sweep")(sweep)
