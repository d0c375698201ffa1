import subprocess
import sys

from booking_platform.runtime import return_freed_memory_promptly

# Where glibc puts a 4 MiB block after an 8 MiB one was freed: in its own mapping (given back
# to the system when freed) or in a heap (kept). mallinfo2's hblkhd counts the mapped bytes.
WHERE_A_BLOCK_GOES = """
import ctypes
import sys
import numpy as np
from booking_platform.runtime import return_freed_memory_promptly

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "tuned":
    assert return_freed_memory_promptly()
first = np.ones(2**20)  # 8 MiB, mapped
del first  # glibc's default now raises its threshold to 8 MiB
mapped_before = libc.mallinfo2().hblkhd
block = np.ones(2**19)  # 4 MiB
print("mapped" if libc.mallinfo2().hblkhd - mapped_before >= 4 * 2**20 else "heap")
"""


def _where_a_block_goes(mode: str) -> str:
    run = subprocess.run(
        [sys.executable, "-c", WHERE_A_BLOCK_GOES, mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return run.stdout.strip()


def test_large_blocks_stay_returnable_after_a_larger_one_was_freed() -> None:
    assert _where_a_block_goes("default") == "heap"
    assert _where_a_block_goes("tuned") == "mapped"


def test_tuning_twice_is_harmless() -> None:
    assert return_freed_memory_promptly() and return_freed_memory_promptly()
