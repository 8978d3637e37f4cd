"""Safe by default, proven with real sockets: a study started by the runner inside network
namespace A answers on A's loopback (web UI / REST, `nnictl`, the tuner's dispatcher and the
trial, which got its parameters) and NOT from namespace B through A's veth address; with
`--host 192.0.2.1` it does. Plus the addresses chosen for each case and the flag's checks, and
the same preload's other fix: a dispatcher slower than NNI's 10 s to connect still runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnisuite.config.experiment import to_nni_config
from nnisuite.nni_patches.binding import LOOPBACK, addresses, check_host, node_environment, platform
from tests.helpers.netns import cannot_make, listed, two_machines
from tests.helpers.nni import NNICTL
from tests.helpers.paths import REPO
from tests.helpers.runner import cli, fault_experiment, runner

UNIFORM_X = {"x": {"_type": "uniform", "_value": [0, 1]}}
RANDOM = {"name": "Random", "classArgs": {"seed": 1}}
PORT = 18080  # inside a namespace of the test's own: nothing else there

PROBE = """
import sys, urllib.error, urllib.request
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=10)
    print("HTTP", r.status)
except urllib.error.HTTPError as e:
    print("HTTP", e.code)
except urllib.error.URLError as e:
    print("REFUSED" if isinstance(e.reason, ConnectionRefusedError) else f"ERROR {e.reason!r}")
"""


def probe(machine, host: str) -> str:
    url = f"http://{host}:{PORT}/api/v1/nni/check-status"
    done = subprocess.run(
        machine.run(sys.executable, "-I", "-c", PROBE, url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return (done.stdout + done.stderr).strip()


def remote_config(tmp_path: Path, ip: str):
    raw = yaml.safe_load((REPO / "experiments" / "mlp_tpe_remote.yaml").read_text())
    raw.update(nniManagerIp=ip, searchSpaceFile=str(REPO / "search_spaces" / "mlp_tpe.yaml"))
    raw["trialCodeDirectory"] = str(REPO)
    return to_nni_config(raw, tmp_path / "remote.yaml")


def test_addresses_are_loopback_unless_asked(tmp_path):
    assert addresses(None) == list(LOOPBACK)
    assert addresses("192.0.2.7") == [*LOOPBACK, "192.0.2.7"]
    assert addresses("0.0.0.0") == ["0.0.0.0"] and addresses("::") == ["0.0.0.0"]
    remote = remote_config(tmp_path, "192.0.2.1")
    assert platform(remote) == "remote"
    assert addresses(None, remote) == [*LOOPBACK, "192.0.2.1"]  # what workers connect back to
    env = node_environment(["127.0.0.1"], base={"NODE_OPTIONS": "--max-http-header-size=9000"})
    assert env["NODE_OPTIONS"].startswith("--max-http-header-size=9000 --require ")
    assert env["NODE_OPTIONS"].endswith("nni_patches/node_preload.js")
    assert env["NNISUITE_BIND_HOSTS"] == "127.0.0.1"


def test_a_host_that_is_not_this_machines_is_refused_before_anything_starts(tmp_path):
    assert "not an IP address" in check_host("example.org")
    assert "not an address of this machine" in check_host("192.0.2.250")
    assert check_host(None) is None and check_host("0.0.0.0") is None
    assert "nniManagerIp 192.0.2.250" in check_host(None, remote_config(tmp_path, "192.0.2.250"))
    yaml_path = fault_experiment(tmp_path, UNIFORM_X, tuner=RANDOM, max_trials=1)
    done = cli("nnisuite.study.run", str(yaml_path), "--host", "192.0.2.250", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "error: --host 192.0.2.250: not an address of this machine" in done.stderr
    assert not (tmp_path / "nni").exists()  # nothing started


REASON = cannot_make()


@pytest.mark.integration
@pytest.mark.skipif(REASON is not None, reason=f"no network namespaces here: {REASON}")
@pytest.mark.parametrize("host", [None, "192.0.2.1"], ids=["default", "--host"])
def test_a_study_is_reachable_from_another_machine_only_when_asked(tmp_path, host):
    hold = tmp_path / "release"
    yaml_path = fault_experiment(
        tmp_path, UNIFORM_X, f"--hold {hold}", tuner=RANDOM, max_trials=1, concurrency=1
    )
    flags = [str(yaml_path), "--port", str(PORT), "--out", str(tmp_path / "out")]
    flags += ["--host", host] if host else []
    with two_machines() as (a, b):
        program = a.run(sys.executable, "-m", "nnisuite.study.run")
        with runner(*flags, port=None, program=program) as r:
            # the trial started and got its parameters: the dispatcher and the trial's channel
            # reached the manager on A's loopback
            r.wait_until(lambda: Path(f"{hold}.started").exists(), what="the trial started")
            assert probe(a, "127.0.0.1") == "HTTP 200"
            seen_from_b = probe(b, a.address)
            exp_id = r.output.split("experiment ", 1)[1].split(":", 1)[0]
            if host is None:
                assert seen_from_b == "REFUSED", seen_from_b
                assert probe(a, a.address) == "REFUSED"  # A's own veth address: not bound
                listing = subprocess.run(
                    a.run(*NNICTL, "trial", "ls", exp_id),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )  # nnictl beside the runner, on the same machine
                assert "RUNNING" in listing.stdout, listing.stdout + listing.stderr
                assert "note: NNI's web UI" not in r.output
            else:
                assert seen_from_b == "HTTP 200", seen_from_b
                assert f"listen on {a.address} (port {PORT}) without authentication" in r.output
            # NNI's "Web portal URLs" line names only what answers
            assert (f"http://{a.address}:{PORT}" in r.output) == (host is not None)
            hold.touch()
            assert r.wait() == 0, r.output[-3000:]
        assert "trials 1/1 done, 1 succeeded" in r.output
        assert (tmp_path / "out" / "trials.csv").is_file()
    assert a.name not in listed() and b.name not in listed()


@pytest.mark.integration
def test_a_dispatcher_slower_than_ten_seconds_still_connects(tmp_path):
    """NNI 3.0 gives the tuner's dispatcher 10 s to connect; a tuner that takes 12 s to build
    (a loaded machine) put the experiment in ERROR. The preload waits 120 s."""
    tuner = {
        "codeDirectory": str(REPO / "tests" / "fixtures"),
        "className": "slow_tuner.SlowTuner",
        "classArgs": {"seed": 1},
    }
    yaml_path = fault_experiment(tmp_path, UNIFORM_X, tuner=tuner, max_trials=1)
    with runner(str(yaml_path), "--out", str(tmp_path / "out")) as r:
        assert r.wait() == 0, r.output[-3000:]
    assert "trials 1/1 done, 1 succeeded" in r.output
    assert "did not connect" not in r.output


def listening(pid: int, port: int) -> set[str]:
    import psutil

    return {
        c.laddr.ip
        for c in psutil.Process(pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def answers(host: str, port: int) -> str:
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/api/v1/nni/check-status"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, timeout=30
    )
    return done.stdout.strip()


def this_machines_other_addresses() -> list[str]:
    import psutil

    return [
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family.name in ("AF_INET", "AF_INET6")
        and a.address.split("%")[0] not in LOOPBACK
        and not a.address.startswith("fe80")
    ]


@pytest.mark.integration
@pytest.mark.parametrize("how", ["runner", "manual"])
def test_a_manager_listens_on_both_loopbacks_and_nowhere_else(tmp_path, monkeypatch, how):
    """What the runner's URL line promises (http://127.0.0.1:PORT and http://[::1]:PORT) answers,
    and nothing else of this machine does: as the runners start a manager (owned_start), and on
    the guide's manual path (NODE_OPTIONS="--require .../node_preload.js" nnictl ...), where the
    preload's own default decides."""
    from nnisuite.nni_patches.binding import PRELOAD
    from tests.helpers.database import Database
    from tests.helpers.nni import viewing

    config = {
        "searchSpace": UNIFORM_X,
        "trialCommand": "true",
        "trialConcurrency": 1,
        "tuner": RANDOM,
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path),
    }
    exp_id = f"bound{how}"  # one per case: the two may run at once, and the home list is by id
    Database(tmp_path, exp_id, config).write()
    if how == "manual":
        monkeypatch.setenv("NODE_OPTIONS", f"--require {PRELOAD}")
        monkeypatch.delenv("NNISUITE_BIND_HOSTS", raising=False)
    with viewing(tmp_path, exp_id, owned=how == "runner") as (exp, port):
        pid = exp._proc.pid
        assert listening(pid, port) == {"127.0.0.1", "::1"}
        assert answers("127.0.0.1", port) == "HTTP 200"
        assert answers("::1", port) == "HTTP 200"
        for address in this_machines_other_addresses():
            assert answers(address, port) == "REFUSED", address
