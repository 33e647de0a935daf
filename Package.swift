// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]
// Storage code awaits its database inside the store's actor: async calls stay on the caller's executor.
let storage: [SwiftSetting] = strict + [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "Rondo",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rondo", targets: ["rondo"]),
        .library(name: "FederationCore", targets: ["FederationCore"]),
        .library(name: "FederationClient", targets: ["FederationClient"]),
        .library(name: "Coordinator", targets: ["Coordinator"]),
        .library(name: "ModelManager", targets: ["ModelManager"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Hummingbird brings these; they are listed because the coordinator imports them itself.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
    ],
    targets: [
        // Pure round logic: no sockets, files, clocks or global randomness.
        .target(name: "FederationCore", swiftSettings: strict),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(
            name: "ModelManager",
            dependencies: [
                "FederationCore", "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: storage
        ),
        .target(
            name: "PostgresStore",
            dependencies: [
                "ModelManager",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: storage
        ),
        .target(
            name: "FederationTelemetry",
            dependencies: [
                "FederationCore", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The generated OTLP types in OTLP/ need this exact runtime version (see OTLP/README.md).
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            exclude: ["OTLP/README.md"],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "CurlHTTP",
            dependencies: ["CCurl"],
            swiftSettings: strict
        ),
        .target(
            name: "FederationClient",
            dependencies: [
                "FederationCore", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Coordinator",
            dependencies: [
                "FederationCore", "ModelManager", "FederationTelemetry",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            resources: [.copy("Resources/openapi.yaml")],
            swiftSettings: strict
        ),
        .target(
            name: "DemoFederation",
            dependencies: [
                "FederationCore", "FederationClient", "Coordinator", "CZlib", "FederationTelemetry", "ModelManager",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Resources/PROVENANCE.md"],
            resources: [.copy("Resources/digits.csv.gz")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "rondo",
            dependencies: [
                "FederationCore", "FederationClient", "Coordinator", "DemoFederation", "ModelManager",
                "FederationTelemetry", "CurlHTTP", "PostgresStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "RondoTestSupport",
            dependencies: [
                "Coordinator", "FederationCore", "CurlHTTP", "ModelManager", "FederationTelemetry",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/RondoTestSupport"
        ),
        .testTarget(name: "FederationCoreTests", dependencies: ["FederationCore"]),
        // Starts a throwaway PostgreSQL server for the tests that need one.
        .target(name: "PostgresTestSupport", path: "Tests/PostgresTestSupport"),
        .testTarget(
            name: "ModelManagerTests",
            dependencies: [
                "ModelManager", "FederationCore", "PostgresStore", "PostgresTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "FederationTelemetryTests",
            dependencies: [
                "FederationTelemetry", "RondoTestSupport",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "FederationClientTests",
            dependencies: [
                "FederationClient", "FederationCore", "Coordinator", "RondoTestSupport", "CurlHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "CoordinatorTests",
            dependencies: [
                "Coordinator", "FederationClient", "CurlHTTP", "FederationCore", "RondoTestSupport",
                "FederationTelemetry", "ModelManager",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "DemoFederationTests",
            dependencies: [
                "DemoFederation", "FederationCore", "RondoTestSupport", .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "RondoCLITests",
            dependencies: [
                "ModelManager", "FederationCore", "RondoTestSupport", "CurlHTTP", "PostgresStore",
                "PostgresTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
