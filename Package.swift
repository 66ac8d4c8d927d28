// swift-tools-version:6.1
//
// Stable Diffusion, explained by running it: a plain-Swift tensor core, the SD 1.x model on top of it,
// a PNG/GIF frame exporter on libpng and libgd, and one executable per lesson.

import PackageDescription

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
        // The classroom page's web server and its WebSocket; none of Hummingbird's optional traits.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.0"),
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
        // The innermost loops (GEMM register tile, vector exp, half-precision widening), compiled
        // once per instruction set and chosen at run time (see TensorCore's InstructionSet.swift).
        .target(name: "_CKernels"),
        // Worker threads for the parallel loops, which spin briefly before they sleep (workers.c).
        .target(name: "_CWorkers"),

        // MARK: Libraries
        .target(name: "TensorCore", dependencies: ["_CMemory", "_CKernels", "_CWorkers"], exclude: ["README.md", "Fast/NOTES.md"]),
        // Its tests reach internal pieces (chunk writer, CRC, plot axes), which are declared
        // `package` for them.
        .target(name: "FrameExport", dependencies: ["TensorCore", "_CLibPNG", "_CLibGD"]),
        .target(name: "StableDiffusion", dependencies: ["TensorCore"], exclude: ["README.md"],
                resources: [.copy("TextEncoder/Resources")]),
        .target(name: "LessonKit", dependencies: [
            "TensorCore", "FrameExport", "StableDiffusion",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // The classroom page (`sd classroom`): a web server, its queue of generations, the page itself.
        .target(name: "Classroom", dependencies: [
            "TensorCore", "FrameExport", "StableDiffusion", "LessonKit",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
        ], exclude: ["README.md"], resources: [.copy("Page")]),

        // MARK: Command-line tools
        .executableTarget(name: "sd", dependencies: [
            "StableDiffusion", "FrameExport", "LessonKit", "Classroom",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "sd-bench", dependencies: [
            "TensorCore", "StableDiffusion",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Lessons (their texts are in Lessons/NN-name.md)
        .executableTarget(name: "forward-noising", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "backward-denoising", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "vae-latents", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "cross-attention", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "training", dependencies: [
            "LessonKit",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Tests
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "FrameExportTests", dependencies: ["FrameExport"]),
        .testTarget(name: "StableDiffusionTests", dependencies: ["StableDiffusion"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LessonTests", dependencies: ["LessonKit"]),
        .testTarget(name: "ClassroomTests", dependencies: [
            "Classroom",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "HummingbirdWSTesting", package: "hummingbird-websocket"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
