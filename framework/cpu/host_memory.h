// Host memory for CPU tensors: 64-byte aligned blocks from the C heap, with large blocks kept for
// reuse. Passes over large fresh tensors were dominated by first touches of new pages (a fault
// per 4 KiB, several microseconds each under virtualisation), and glibc's best fit leaves big
// freed blocks fragmented, so a same-sized request often took fresh pages again.
//   - Blocks of 1 MiB and more are kept when freed (up to 1 GiB in all, the oldest given back
//     beyond that) and handed out again for a request of the same size, within 1/8.
//   - Blocks of 8 MiB and more are advised for transparent huge pages (a fault per 2 MiB).
#pragma once
#include <cstddef>

namespace shrink::cpu {

void* host_allocate(size_t nbytes);
void host_free(void* p);

// Bytes held for reuse (for tests and diagnostics).
size_t host_cached_bytes();

}  // namespace shrink::cpu
