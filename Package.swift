// swift-tools-version:6.0
//
// Stable Diffusion, explained by running it: a plain-Swift tensor core, the SD 1.x model on top of it,
// a PNG/GIF frame exporter on libpng and libgd, and one executable per lesson.

import PackageDescription

// The GEMM micro-kernel is written with SIMD8<Float>. Compiled for generic x86-64 those vectors are
// split into SSE halves with no fused multiply-add, and the kernel runs >100x slower (0.67 vs 110
// GFLOP/s measured on a Zen 3 core). "haswell" is the oldest x86 CPU name with AVX2 + FMA + F16C;
// every x86 desktop CPU since 2013-2015 has them. Set SD_GENERIC_CPU=1 to build for older machines.
// On arm64, NEON is always there, so no flag is needed.
var vectorUnits: [SwiftSetting] = []
#if arch(x86_64)
if Context.environment["SD_GENERIC_CPU"] == nil {
    vectorUnits = [.unsafeFlags(["-target-cpu", "haswell"])]
}
#endif

let package = Package(
    name: "StableDiffusionLessons",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sd", targets: ["sd"]),
        .executable(name: "sd-bench", targets: ["sd-bench"]),
        .executable(name: "forward-noising", targets: ["forward-noising"]),
        .executable(name: "backward-denoising", targets: ["backward-denoising"]),
        .executable(name: "vae-latents", targets: ["vae-latents"]),
        .executable(name: "cross-attention", targets: ["cross-attention"]),
        .executable(name: "training", targets: ["training"]),
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "FrameExport", targets: ["FrameExport"]),
        .library(name: "StableDiffusion", targets: ["StableDiffusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: C libraries, seen through system-library targets (implementation details: underscored)
        .systemLibrary(
            name: "_CLibPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(
            name: "_CLibGD", pkgConfig: "gdlib",
            providers: [.apt(["libgd-dev"]), .brew(["gd"])]),

        // Memory hints Swift cannot give: malloc reuse, huge pages, cache prefetch (see its .c file).
        .target(name: "_CMemory"),

        // MARK: Libraries
        .target(name: "TensorCore", dependencies: ["_CMemory"], exclude: ["README.md", "Fast/NOTES.md"],
                swiftSettings: vectorUnits),
        // Its tests reach internal pieces (chunk writer, CRC, plot axes) with @testable import,
        // which a release build allows only when compiled for testing.
        .target(name: "FrameExport", dependencies: ["TensorCore", "_CLibPNG", "_CLibGD"],
                swiftSettings: vectorUnits + [.unsafeFlags(["-enable-testing"])]),
        .target(name: "StableDiffusion", dependencies: ["TensorCore"], exclude: ["README.md"],
                resources: [.copy("TextEncoder/Resources")],
                swiftSettings: vectorUnits),
        .target(name: "LessonKit", dependencies: [
            "TensorCore", "FrameExport", "StableDiffusion",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ],
                swiftSettings: vectorUnits),

        // MARK: Command-line tools
        .executableTarget(name: "sd", dependencies: [
            "StableDiffusion", "FrameExport", "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),
        .executableTarget(name: "sd-bench", dependencies: [
            "TensorCore", "StableDiffusion",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),

        // MARK: Lessons (their texts are in Lessons/NN-name.md)
        .executableTarget(name: "forward-noising", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),
        .executableTarget(name: "backward-denoising", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),
        .executableTarget(name: "vae-latents", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),
        .executableTarget(name: "cross-attention", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),
        .executableTarget(name: "training", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: vectorUnits),

        // MARK: Tests
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], resources: [.copy("Fixtures")],
                    swiftSettings: vectorUnits),
        .testTarget(name: "FrameExportTests", dependencies: ["FrameExport"]),
        .testTarget(name: "StableDiffusionTests", dependencies: ["StableDiffusion"],
                    resources: [.copy("Fixtures")], swiftSettings: vectorUnits),
        .testTarget(name: "LessonTests", dependencies: ["LessonKit"]),
    ],
    swiftLanguageModes: [.v5]
)
