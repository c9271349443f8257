// swift-tools-version:6.0
import PackageDescription

// Dependencies point one way: rotator -> Operations -> Rotation -> AWS -> HTTP / SigV4 -> C libraries.
// No Foundation anywhere: the binary stays small and starts fast.
let package = Package(
    name: "rotator",
    products: [
        .executable(name: "rotator", targets: ["rotator"]),
        .executable(name: "sigv4-bench", targets: ["sigv4-bench"]),
    ],
    targets: [
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Binds hypotf to GLIBC_2.2.5 so the binary loads on provided.al2023 (glibc 2.34). It has no
        // headers: "." stands in for the include directory SwiftPM requires.
        .target(name: "CGlibcCompat", publicHeadersPath: "."),
        // Prefixed module names: never the name of the standard library's or a well-known package's module.
        .target(name: "RotatorJSON"),
        .target(name: "RotatorLogging", dependencies: ["RotatorJSON"]),
        .target(name: "SigV4", dependencies: ["CCrypto"]),
        .target(name: "HTTP", dependencies: ["CCurl"]),
        .target(name: "AWS", dependencies: ["SigV4", "HTTP", "RotatorJSON"]),
        .target(name: "LambdaRuntime", dependencies: ["HTTP", "RotatorJSON", "RotatorLogging"]),
        // SigV4 for its SHA-256: the documents' scripts are compared by digest (ShippedDocument).
        .target(name: "Rotation", dependencies: ["AWS", "RotatorJSON", "RotatorLogging", "SigV4"]),
        // The operator commands (status, doctor, cancel): the same binary, run outside Lambda.
        .target(name: "Operations", dependencies: ["Rotation", "AWS", "HTTP", "RotatorJSON", "RotatorLogging", "SigV4"]),
        .executableTarget(name: "rotator", dependencies: ["Rotation", "Operations", "LambdaRuntime", "AWS", "HTTP", "RotatorLogging",
                                                         "CGlibcCompat"]),
        // The benchmark's signing loop (make bench); not part of the deployment package.
        .executableTarget(name: "sigv4-bench", dependencies: ["SigV4", "RotatorJSON"]),
        // The fakes the test targets share: a manual clock, a scripted HTTP client, `caught`. Only test targets
        // depend on it, so the rotator binary never links it (it imports Testing for Issue.record).
        .target(name: "RotatorTestSupport", dependencies: ["AWS", "HTTP", "RotatorJSON"], path: "Tests/RotatorTestSupport"),
        .testTarget(name: "JSONTests", dependencies: ["RotatorJSON"]),
        .testTarget(name: "LoggingTests", dependencies: ["RotatorLogging", "RotatorJSON"]),
        // Resources/sigv4: the official SigV4 suite (Apache-2.0, its LICENSE and NOTICE beside it),
        // read from the source tree by path; excluded, so it is neither compiled nor bundled.
        .testTarget(name: "SigV4Tests", dependencies: ["SigV4"], exclude: ["Resources"]),
        .testTarget(name: "AWSTests", dependencies: ["AWS", "SigV4", "RotatorTestSupport"]),
        .testTarget(name: "LambdaRuntimeTests", dependencies: ["LambdaRuntime", "RotatorTestSupport"]),
        .testTarget(name: "RotationTests", dependencies: ["Rotation", "RotatorTestSupport"]),
        .testTarget(name: "OperationsTests", dependencies: ["Operations", "Rotation", "AWS", "RotatorJSON", "RotatorLogging", "SigV4",
                                                          "RotatorTestSupport"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "RotatorTestSupport"]),
    ]
)
