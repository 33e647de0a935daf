/// Left-aligned text columns with two spaces between them, for the CLI's default output. Every cell is made
/// safe for a terminal first: text from the store or a coordinator (client names, audit actors, reasons) may
/// hold control characters, and an escape sequence must not reach the operator's terminal.
struct TextTable {
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        let rows = rows.map { $0.map(AdminAPI.printable) }
        let widths = headers.indices.map { column in
            ([headers[column]] + rows.map { column < $0.count ? $0[column] : "" }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1
                    ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}
