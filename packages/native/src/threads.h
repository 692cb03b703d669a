// One helper thread shared by every kernel: the calling thread runs one half of the work, the helper the other.
// Compiled for baseline x86-64 (no ISA-specific code).
#pragma once

namespace peftjs {

// Number of threads a kernel can use (1 when the machine has a single core, else 2).
int max_threads();

// Runs part(ctx, 0) on the calling thread and part(ctx, 1) on the helper thread, returning when both are done;
// both parts run here, one after the other, when threads ≤ 1 or another caller holds the helper.
void run_two_parts(int threads, void (*part)(void* ctx, int index), void* ctx);

}  // namespace peftjs
