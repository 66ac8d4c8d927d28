// Which variant can this computer run? The processor says what it has (the cpuid instruction),
// and the operating system says which registers it saves when it switches between programs
// (xgetbv): a CPU with AVX-512 under a system that does not save the 512-bit registers cannot use
// them, so both must agree.

#include "cpu_kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>

/// The operating system's XCR0 register: bit 1 SSE state, bit 2 AVX (upper halves of ymm), bits
/// 5-7 AVX-512 (mask registers, upper halves of zmm0-15, zmm16-31).
static unsigned long long enabled_register_state(void) {
    unsigned int low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((unsigned long long)high << 32) | low;
}

int cpu_supports(cpu_variant variant) {
    if (variant == cpu_variant_baseline) return 1;
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const int fma = (ecx >> 12) & 1, osxsave = (ecx >> 27) & 1, avx = (ecx >> 28) & 1, f16c = (ecx >> 29) & 1;
    if (!(fma && osxsave && avx && f16c)) return 0;
    const unsigned long long state = enabled_register_state();
    if ((state & 0x6) != 0x6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const int avx2 = (ebx >> 5) & 1;
    if (variant == cpu_variant_avx2) return avx2;
    const int avx512f = (ebx >> 16) & 1, avx512vl = (ebx >> 31) & 1;
    if (variant == cpu_variant_avx512) return avx2 && avx512f && avx512vl && (state & 0xE6) == 0xE6;
    return 0;
}

#else

int cpu_supports(cpu_variant variant) { return variant == cpu_variant_baseline; }

#endif
