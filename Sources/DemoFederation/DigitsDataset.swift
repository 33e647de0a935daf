import FederationCore
import Foundation

/// The UCI optical digits set bundled with Rondo (1,797 8×8 images, labels 0–9; see PROVENANCE.md).
public struct DigitsDataset: Sendable {
    public static let featureCount = 64
    public static let classCount = 10

    /// Pixel values scaled to [0, 1], `featureCount` per example, row after row.
    public var features: [Float]
    public var labels: [Int]

    public var count: Int { labels.count }

    public init(features: [Float], labels: [Int]) {
        precondition(features.count == labels.count * Self.featureCount)
        self.features = features
        self.labels = labels
    }

    /// Loads the copy bundled as a package resource.
    public static func bundled() throws -> DigitsDataset {
        guard let url = Bundle.module.url(forResource: "digits.csv", withExtension: "gz") else {
            throw DatasetError(message: "digits.csv.gz is missing from the DemoFederation resources")
        }
        return try load(gzipFile: url.path)
    }

    /// Loads a gzipped CSV of 64 pixel values (0–16) and a label per row.
    public static func load(gzipFile path: String) throws -> DigitsDataset {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(message: "cannot read \(path)")
        }
        return try parse(csv: String(decoding: try Gzip.decompress(Array(data)), as: UTF8.self))
    }

    static func parse(csv: String) throws -> DigitsDataset {
        var features: [Float] = []
        var labels: [Int] = []
        for (number, line) in csv.split(whereSeparator: \.isNewline).enumerated() {
            let fields = line.split(separator: ",")
            guard fields.count == featureCount + 1,
                let values = Optional(fields.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }),
                values.count == featureCount + 1, let label = values.last, (0..<classCount).contains(label)
            else { throw DatasetError(message: "line \(number + 1) is not 64 pixels and a label") }
            features += values.dropLast().map { Float($0) / 16 }
            labels.append(label)
        }
        return DigitsDataset(features: features, labels: labels)
    }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> DigitsDataset {
        var features: [Float] = []
        features.reserveCapacity(indices.count * Self.featureCount)
        for index in indices {
            features += self.features[(index * Self.featureCount)..<((index + 1) * Self.featureCount)]
        }
        return DigitsDataset(features: features, labels: indices.map { labels[$0] })
    }
}

public struct DatasetError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
