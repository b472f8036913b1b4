"""Which GPUs a server job sees: the server's own GPUs, mapped through its CUDA_VISIBLE_DEVICES."""

from __future__ import annotations

from synth_lab.job.jobspec import available_gpus
from synth_lab.server.scheduler import gpu_environment


def test_job_devices_are_entries_of_the_servers_visible_list() -> None:
    server = {"CUDA_VISIBLE_DEVICES": "2,3,5"}
    assert available_gpus(server) == 3
    assert gpu_environment([1, 2], server) == {
        "CUDA_VISIBLE_DEVICES": "3,5",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
    }


def test_uuids_and_mig_ids_pass_through() -> None:
    server = {"CUDA_VISIBLE_DEVICES": "GPU-8f1c2d3e-aaaa, MIG-4b5c6d7e-bbbb,GPU-0a1b-cccc"}
    env = gpu_environment([0, 2], server)
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-8f1c2d3e-aaaa,GPU-0a1b-cccc"
    assert gpu_environment([1], server)["CUDA_VISIBLE_DEVICES"] == "MIG-4b5c6d7e-bbbb"


def test_without_a_list_ordinals_are_physical_in_pci_order_and_cpu_jobs_see_none() -> None:
    assert gpu_environment([0, 1], {})["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert gpu_environment([0], {})["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert gpu_environment([], {"CUDA_VISIBLE_DEVICES": "4"})["CUDA_VISIBLE_DEVICES"] == ""
    # An order the server was given explicitly is how its ordinals were meant.
    fastest = {"CUDA_VISIBLE_DEVICES": "1,0", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert gpu_environment([0], fastest) == {
        "CUDA_VISIBLE_DEVICES": "1",
        "CUDA_DEVICE_ORDER": "FASTEST_FIRST",
    }
