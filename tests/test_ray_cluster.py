"""Sweeps on a multi-node Ray cluster, simulated on this machine with `ray.cluster_utils.Cluster`.

Each node is a raylet of its own with 1 CPU (a head with none, so it runs no cell): a node
removed in the middle of a cell, the cell reruns on another node and its row is written once;
a node that cannot see the sweep's folder is refused before any cell.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ndogo.experiments.config import load_sweep_config
from ndogo.experiments.store import STORE, Store
from ndogo.locks import file_lock
from tests.test_sweep import ROOT, cells_in, sweep_command, write_config

ray = pytest.importorskip("ray", reason="ray is not installed")


@pytest.fixture
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    try:
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    except Exception as err:  # no shared memory, no ports: this machine cannot host Ray
        pytest.skip(f"a Ray cluster cannot start here: {type(err).__name__}: {err}")
    try:
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_a_cell_whose_node_is_removed_reruns_on_another_node(tmp_path: Path, tiny_model: Path,
                                                             tiny_corpus: Path, cluster: Any) -> None:
    first = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    lock = tmp_path / "timing.lock"
    # The cell times its model under [evaluate] lock: holding that lock here parks the cell in its
    # middle (its model built and scored, not yet timed) for as long as the test needs, with no sleep.
    config = write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]", speed="true")
    config.write_text(config.read_text().replace("[evaluate]", f'[evaluate]\nsample = 4\nlock = "{lock}"'))
    cells = {c.id: c for c in load_sweep_config(config, str(tiny_corpus)).cells()}
    baseline = next(cid for cid, c in cells.items() if c.recipe.name == "baseline")
    out = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with file_lock(lock):
        proc = subprocess.Popen(sweep_command(config, out, tiny_corpus, "--executor", "ray", "--ray-address",
                                              cluster.address), cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # the baseline's fine-tuning is finished (its marker is written): the cell is past building
            wait_for("the baseline cell to finish fine-tuning",
                     lambda: proc.poll() is not None or list((out / "artifacts").glob("finetune-*.json")), 150)
            assert proc.poll() is None, proc.communicate()[0]
            assert cells_in(out) == [(baseline, "running")]
            second = cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes()
            cluster.remove_node(first)  # its raylet and the cell's worker are killed
        except BaseException:
            proc.kill()
            raise
    try:
        output, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, output
    assert "2 of 2 cells done, 0 failed" in output
    store = Store(out)
    try:
        rows = {r["cell_id"]: r for r in store.rows()}
    finally:
        store.close()
    assert sorted(rows) == sorted(cells)  # one row per cell: none lost, none twice
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows.values())  # the driver claimed each once
    assert {r["node"] for r in rows.values()} == {second.node_id}  # both ran on the node that stayed
    log = (out / "logs" / f"{baseline}.log").read_text()
    assert log.count(f"== {cells[baseline].label()}") == 2  # the baseline started on each node
    # the rerun reused the fine-tuned model the removed node left in the shared artifacts
    assert rows[baseline]["stages"][0]["reused"] == "done"
    assert not list(out.glob(".shared-probe*"))


def test_a_node_that_cannot_see_the_sweep_folder_is_refused(tmp_path: Path, tiny_model: Path,
                                                           tiny_corpus: Path, cluster: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node here shares one disk, so one node is made to mount another folder at --out."""
    from ndogo.experiments import sweep

    cluster.add_node(num_cpus=1)
    lonely = cluster.add_node(num_cpus=1).node_id
    cluster.wait_for_nodes()
    elsewhere = tmp_path / "its-own-disk"
    elsewhere.mkdir()
    real = sweep._probe_node

    def probe(folder: str, token: str) -> dict[str, Any]:  # pickled by value: it runs on the nodes
        import ray as ray_there

        if ray_there.get_runtime_context().get_node_id() == lonely:
            folder = str(elsewhere)
        return real(folder, token)

    monkeypatch.setattr(sweep, "_probe_node", probe)
    config = load_sweep_config(write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]"), str(tiny_corpus))
    out = tmp_path / "sweep"
    with pytest.raises(sweep.SweepError) as err:
        sweep.run_sweep(config, out, executor="ray", ray_address=cluster.address, show_progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{out.resolve()}: node ")
    assert lonely[:12] in message and "does not see the probe file" in message
    assert "--out must be a folder every node mounts at the same path" in message
    assert not (out / STORE).exists() and not (out / "logs").exists()  # refused before any cell
    assert not ray.is_initialized()  # the connection the sweep made is closed

    monkeypatch.setattr(sweep, "_probe_node", real)  # the same cluster, every node sharing the folder: accepted
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    path, token = sweep.check_shared_folder(ray, out)
    assert Path(path).read_text() == token and [p.name for p in out.glob(".shared-probe*")] == [".shared-probe"]


def test_a_cell_on_a_node_without_the_folder_fails_before_building(tmp_path: Path, tiny_model: Path,
                                                                   tiny_corpus: Path) -> None:
    """A node that joined after the sweep's check: the cell reads the probe itself, and builds nothing."""
    from ndogo.experiments.cell import CellSettings, run_cell

    config = load_sweep_config(write_config(tmp_path / "grid.toml", tiny_model, seeds="[1]"), str(tiny_corpus))
    cell = config.cells()[0]
    (tmp_path / ".shared-probe").write_text("another sweep's token")
    settings = CellSettings(str(tmp_path / "artifacts"), str(tmp_path / "logs"),
                            probe=(str(tmp_path / ".shared-probe"), "this sweep's token"))
    row = run_cell(cell, settings)
    assert row["status"] == "failed" and "does not see the sweep's folder" in row["error"]
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "logs").exists()
