"""Dask clients for sweeps: the in-process LocalCluster (worker processes on the loopback, one CPU each), or a
scheduler at an address, asked who it is before a client is made, so an address that accepts and never answers
(or an HTTP port such as the dashboard's 8787) is a clear ConnectionError within `CONNECT_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import numbers
import os
import zlib
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from workbench.core.runtime import available_cpus

__all__ = ["CONNECT_TIMEOUT"]  # the clients of runs.sweep.run (its `client` argument), not an API of their own

if TYPE_CHECKING:
    from distributed import Client, Worker

CONNECT_TIMEOUT = 5.0  # seconds to reach a scheduler address before a clear error (well within 10 s)
MAX_WORKERS = 1024
ONE_THREAD = {  # each worker process computes with one thread (with `pin_workers`): the parallelism is the processes
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # several workers may share one GPU
}
_LOCAL: dict[str, Any] = {}


def check_workers(n_workers: object) -> int | None:
    """A local cluster's number of worker processes: None (one per CPU) or an integer in [1, MAX_WORKERS]."""
    if n_workers is None:
        return None
    if (
        isinstance(n_workers, bool)
        or not isinstance(n_workers, numbers.Integral)
        or not 1 <= int(n_workers) <= MAX_WORKERS
    ):
        raise ValueError(
            f"workers: must be a whole number of worker processes in [1, {MAX_WORKERS}], got {n_workers!r}"
        )
    return int(n_workers)


def local_client(n_workers: int | None = None, processes: bool = True) -> Client:
    """The in-process LocalCluster's client (started once, reused by later sweeps, closed at exit): worker
    processes on the loopback, one per available CPU, one thread each."""
    from distributed import Client, LocalCluster

    n_workers = check_workers(n_workers) or available_cpus()
    key = f"{n_workers}-{processes}"
    client = _LOCAL.get(key)
    if client is None or client.status != "running":
        where: dict[str, Any] = dict(host="127.0.0.1", env=ONE_THREAD) if processes else {}  # threads: in-process
        try:
            cluster = LocalCluster(
                n_workers=n_workers, threads_per_worker=1, processes=processes, dashboard_address="127.0.0.1:0",
                silence_logs=40, **where,
            )  # fmt: skip
        except RuntimeError as err:  # most often a script that starts worker processes at import time
            raise RuntimeError(
                f"local cluster: could not start {n_workers} worker processes ({err}). In a script, start the sweep "
                "under `if __name__ == '__main__':` (worker processes import the main module)"
            ) from None
        client = _LOCAL[key] = Client(cluster)
        if processes:
            pin_workers(client)
        atexit.register(lambda: (client.close(), cluster.close()))
    return client


def pin_workers(client: Client) -> None:
    """Each worker process of a local cluster on one CPU of this process's (round robin by worker name), every
    thread: XLA sizes its CPU thread pool from the affinity, and jax 0.10 ignores `--xla_cpu_multi_thread_eigen`,
    so unpinned workers each computed on every core and competed (a point took twice its time with two workers).
    Registered as a worker plugin, so a worker restarted after a crash is pinned again. Linux only."""
    if not hasattr(os, "sched_setaffinity"):
        return
    from distributed.diagnostics.plugin import WorkerPlugin

    cpus = sorted(os.sched_getaffinity(0))

    class OneCPU(WorkerPlugin):
        name = "workbench-one-cpu"

        def setup(self, worker: Worker) -> None:
            index = worker.name if isinstance(worker.name, int) else zlib.crc32(str(worker.name).encode())
            for thread in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(thread), {cpus[index % len(cpus)]})

    client.register_plugin(OneCPU())


async def _identity(address: str, timeout: float) -> object:
    """The scheduler's answer to "identity" (its type, id, workers)."""
    from distributed.comm.core import connect as open_comm

    comm = await open_comm(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def probe(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Ask `address` who it is; a ConnectionError unless a Dask scheduler answers within `timeout` seconds. Asked
    from a thread of its own (the caller may be inside a running event loop, as a notebook's kernel is)."""

    def ask() -> object:
        return asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))

    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="workbench-probe")
    try:
        reply = pool.submit(ask).result(timeout + 2)
    except (OSError, TimeoutError, concurrent.futures.TimeoutError) as err:
        why = "no answer" if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}"
        raise ConnectionError(
            f"scheduler: could not reach {address!r} within {timeout:g} s ({why}); is a Dask scheduler running there "
            "(dask scheduler, by default on port 8786, not the dashboard's 8787; or a dask-jobqueue cluster's "
            "scheduler_address)?"
        ) from None
    except (ValueError, TypeError) as err:
        raise ConnectionError(f"scheduler: {address!r} is not a Dask scheduler address ({err})") from None
    except Exception as err:  # a reply that is not Dask's protocol (an HTTP server, another program)
        raise ConnectionError(
            f"scheduler: {address!r} answered, but not as a Dask scheduler ({type(err).__name__}); the dashboard's "
            "port (8787) is not the scheduler's (8786)"
        ) from None
    finally:
        pool.shutdown(wait=False)
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise ConnectionError(f"scheduler: {address!r} answered, but it is not a Dask scheduler ({reply!r:.80})")


def connect(address: str, timeout: float = CONNECT_TIMEOUT) -> Client:
    """A client of the scheduler at `address`; a clear ConnectionError when none answers there in time."""
    from distributed import Client

    if not isinstance(address, str) or not address.strip():
        raise ConnectionError(f"scheduler: must be an address such as tcp://host:8786, got {address!r}")
    probe(address, timeout)
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise ConnectionError(
            f"scheduler: could not reach {address!r} within {timeout:g} s ({type(err).__name__}); is a Dask "
            "scheduler running there (dask scheduler, or a dask-jobqueue cluster's scheduler_address)?"
        ) from None


@runtime_checkable
class ClusterLike(Protocol):
    """A Dask cluster object (LocalCluster, a dask-jobqueue or dask-gateway cluster): its scheduler's address."""

    @property
    def scheduler_address(self) -> str: ...


def client_of(client: Client | ClusterLike | str | None) -> tuple[Client, bool]:
    """(client, whether this call made it and must close it) from None, an address, a cluster or a client."""
    if client is None:
        return local_client(), False
    if isinstance(client, str):
        return connect(client), True
    if isinstance(client, ClusterLike) and not hasattr(client, "submit"):  # a cluster object
        return connect(client.scheduler_address), True
    return cast("Client", client), False  # duck-typed: anything else is used as a client


def slots(client: Client) -> int:
    """Tasks the cluster runs at once (its workers' threads); 1 when it cannot say."""
    try:
        return max(1, sum(cast("dict[str, int]", client.nthreads()).values()))
    except Exception:  # a duck-typed client, or a scheduler that went away: the estimate only
        return 1
