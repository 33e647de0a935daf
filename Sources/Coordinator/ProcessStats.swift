import Foundation

/// CPU time, resident memory and open descriptors of this process, read from `/proc` (Linux).
struct ProcessStats {
    var cpuSeconds: Double
    var residentBytes: Int
    var openFileDescriptors: Int

    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// The current figures, or nil where `/proc` is unavailable.
    static func current() -> ProcessStats? {
        guard let fields = statFields() else { return nil }
        // utime and stime are fields 14 and 15 of /proc/self/stat (1-based), i.e. 11 and 12 after the command.
        guard fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]),
            let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
            let residentPages = Int(statm.split(separator: " ")[1])
        else { return nil }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        return ProcessStats(
            cpuSeconds: (user + system) / ticksPerSecond, residentBytes: residentPages * pageSize,
            openFileDescriptors: descriptors)
    }

    /// Unix time the process started (field 22 of /proc/self/stat, in ticks since boot).
    static let startTime: Double? = {
        guard let fields = statFields(), fields.count > 19, let ticks = Double(fields[19]),
            let uptime = try? String(contentsOfFile: "/proc/uptime", encoding: .utf8),
            let secondsSinceBoot = Double(uptime.split(separator: " ")[0])
        else { return nil }
        let bootTime = Date().timeIntervalSince1970 - secondsSinceBoot
        return bootTime + ticks / ticksPerSecond
    }()

    /// The fields of /proc/self/stat after the parenthesised command name (which may contain spaces).
    private static func statFields() -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ")
    }
}
