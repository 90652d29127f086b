"""Run this folder's tests on one torch thread: the tiny models here gain nothing from more, and on a
shared, loaded CPU intra-op threads spin and multiply the run time (measured
here under load: the PPG-BP end-to-end test took 1,458 s wall with 2 threads, ~2.5 min with one)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
