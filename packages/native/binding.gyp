{
  "targets": [
    {
      "target_name": "peftjs_gemm",
      "type": "static_library",
      "sources": ["src/gemm.cc", "src/fused.cc"],
      "cflags_cc": ["-std=c++17", "-O3", "-mavx2", "-mfma", "-fPIC", "-fno-math-errno"],
      "cflags_cc!": ["-O2", "-O1", "-O0", "-Os"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O3", "-mavx2", "-mfma"]
      }
    },
    {
      "target_name": "peftjs_native",
      "sources": ["src/addon.cc"],
      "dependencies": ["peftjs_gemm"],
      "cflags_cc": ["-std=c++17", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "xcode_settings": {
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-O2"]
      }
    }
  ]
}
