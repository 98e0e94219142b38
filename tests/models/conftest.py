import pytest
import torch


@pytest.fixture(autouse=True)
def one_cpu_thread():
    # A few 32x32 images gain nothing from threads, and on shared, busy cores the waits between
    # threads cost many times the convolutions themselves.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
