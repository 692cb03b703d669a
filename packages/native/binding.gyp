{
  "targets": [
    {
      "target_name": "peftjs_kernels",
      "type": "static_library",
      # No -m ISA flags: isa_avx2.cc and isa_avx512.cc enable their instruction sets per function (#pragma GCC
      # target), so the addon loads on any x86-64 CPU and addon.cc picks the table the CPU can run.
      # -Wno-psabi: vector-returning lambdas inside those regions; the *uninitialized warnings come from GCC 12's own
      # AVX-512 headers (their `__Y = __Y` placeholders).
      "sources": ["src/threads.cc", "src/isa_avx2.cc", "src/isa_avx512.cc"],
      "cflags_cc": [
        "-std=c++17", "-O3", "-fPIC", "-fno-math-errno",
        "-Wno-psabi", "-Wno-maybe-uninitialized", "-Wno-uninitialized"
      ],
      "cflags_cc!": ["-O2", "-O1", "-O0", "-Os"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3", "-fno-math-errno", "-Wno-psabi"]
      }
    },
    {
      "target_name": "peftjs_native",
      "sources": ["src/addon.cc"],
      "dependencies": ["peftjs_kernels"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O2"]
      }
    }
  ]
}
