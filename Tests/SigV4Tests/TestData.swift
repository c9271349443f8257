import Glibc
import SigV4

// Reading the official SigV4 suite with Glibc only (the package uses no Foundation).

struct SuiteError: Error, CustomStringConvertible {
    let description: String
}

/// The suite's copy in this repository, `Tests/SigV4Tests/Resources/sigv4` (with its LICENSE and
/// NOTICE), found from this file's own path: nothing outside the repository is read. Package.swift
/// excludes the folder from the target, so SwiftPM neither compiles nor bundles it.
func suiteDirectory(testFile: String = #filePath) -> String {
    // <root>/Tests/SigV4Tests/<file>.swift: the folder beside this file.
    var components = testFile.split(separator: "/", omittingEmptySubsequences: false)
    components.removeLast()
    return components.joined(separator: "/") + "/Resources/sigv4"
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
}

func isFile(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
}

func directoryEntries(_ path: String) throws -> [String] {
    guard let dir = opendir(path) else { throw SuiteError(description: "cannot open directory \(path)") }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func readBytes(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw SuiteError(description: "cannot open \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count == 0 { break }
        bytes += chunk[..<count]
    }
    return bytes
}

/// One case: a folder `<name>/` holding `<name>.req`, `.creq`, `.sts`, `.authz`.
struct SuiteCase {
    let name: String
    let folder: String

    func file(_ suffix: String) -> String { "\(folder)/\(name).\(suffix)" }

    /// An expected output, with CR stripped and trailing newlines dropped: neither is ever
    /// part of a canonical request, string to sign or header value.
    func expected(_ suffix: String) throws -> String {
        var text = String(decoding: try readBytes(file(suffix)), as: UTF8.self)
        text.removeAll { $0 == "\r" }
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}

/// Every folder under `root`, at any depth, that holds a `<folder name>.req`.
func findCases(under root: String) throws -> [SuiteCase] {
    var cases: [SuiteCase] = []
    for name in try directoryEntries(root) {
        let folder = "\(root)/\(name)"
        guard isDirectory(folder) else { continue }
        if isFile("\(folder)/\(name).req") { cases.append(SuiteCase(name: name, folder: folder)) }
        cases += try findCases(under: folder)
    }
    return cases
}

/// Parses a `.req` file: `METHOD target HTTP/1.1`, `Name:value` header lines, an empty line,
/// then the body bytes as they are. Lines may end in CRLF or LF. The target may hold spaces
/// (`/example space/`) and its query is raw; query pairs are percent-decoded here because
/// `SigningRequest.query` holds decoded pairs.
func parseRequest(_ bytes: [UInt8]) throws -> SigningRequest {
    var lines: [String] = []
    var bodyStart = bytes.endIndex
    var lineStart = bytes.startIndex
    while lineStart < bytes.endIndex {
        let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        var line = bytes[lineStart..<lineEnd]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        lineStart = min(lineEnd + 1, bytes.endIndex)
        if line.isEmpty && !lines.isEmpty {
            bodyStart = lineStart
            break
        }
        lines.append(String(decoding: line, as: UTF8.self))
    }
    guard let requestLine = lines.first,
          let firstSpace = requestLine.firstIndex(of: " "),
          let lastSpace = requestLine.lastIndex(of: " "), firstSpace < lastSpace
    else { throw SuiteError(description: "bad request line: \(lines.first ?? "")") }

    let target = requestLine[requestLine.index(after: firstSpace)..<lastSpace]
    let path = target.prefix { $0 != "?" }
    let rawQuery = target.dropFirst(path.count + 1)

    var headers: [(name: String, value: String)] = []
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else {
            throw SuiteError(description: "header line without a colon (folded headers are not supported): \(line)")
        }
        headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
    }
    return SigningRequest(
        method: String(requestLine[..<firstSpace]),
        path: String(path),
        query: parseQuery(rawQuery),
        headers: headers,
        body: Array(bytes[bodyStart...])
    )
}

/// `a=1&b&c=` -> `[("a","1"), ("b",""), ("c","")]`, each part percent-decoded.
func parseQuery(_ raw: Substring) -> [(name: String, value: String)] {
    raw.split(separator: "&").map { pair in
        let name = pair.prefix { $0 != "=" }
        return (percentDecoded(name), percentDecoded(pair.dropFirst(name.count + 1)))
    }
}

func percentDecoded(_ text: Substring) -> String {
    var out: [UInt8] = []
    var bytes = text.utf8[...]
    while let byte = bytes.popFirst() {
        if byte == UInt8(ascii: "%"), bytes.count >= 2,
           let value = UInt8(String(decoding: bytes.prefix(2), as: UTF8.self), radix: 16) {
            out.append(value)
            bytes = bytes.dropFirst(2)
        } else {
            out.append(byte)
        }
    }
    return String(decoding: out, as: UTF8.self)
}

func header(_ name: String, in headers: [(name: String, value: String)]) -> String? {
    headers.first { $0.name.lowercased() == name.lowercased() }?.value
}
