import Glibc
import RotatorJSON
import Testing
@testable import Rotation

/// The validation-case table every parser of a secret version must agree on (hosts/secret-cases.json;
/// pytests/hosts/test_secret_cases.py runs it through the Linux host helper), through the function's
/// own parser. A case that only a host checks is not the function's to decide.
@Suite struct SecretCaseTableTests {
    static let table: JSON = {
        // <root>/Tests/RotationTests/<this file>: the table is <root>/hosts/secret-cases.json.
        var components = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
        components.removeLast(3)
        let path = components.joined(separator: "/") + "/hosts/secret-cases.json"
        guard let file = fopen(path, "rb") else { fatalError("cannot open \(path)") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while case let count = fread(&chunk, 1, chunk.count, file), count > 0 { bytes += chunk[..<count] }
        return try! JSON.parse(String(decoding: bytes, as: UTF8.self))
    }()

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let text: String
        let valid: Bool
        let error: String?
        var testDescription: String { name }
    }

    static var cases: [Case] {
        let base = table["base"]!
        return table["cases"]!.arrayValue!.compactMap { entry -> Case? in
            if let owners = entry["checkedBy"]?.arrayValue, !owners.contains(.string("function")) { return nil }
            var text: String
            if let raw = entry["raw"]?.stringValue {
                text = raw
            } else {
                var value = base
                for (name, field) in entry["set"]?.objectValue ?? [] { value = value.setting(name, to: field) }
                if case .object(let members) = value {
                    let removed = Set((entry["unset"]?.arrayValue ?? []).compactMap(\.stringValue))
                    value = .object(members.filter { !removed.contains($0.0) })
                }
                text = value.serialized
            }
            return Case(name: entry["name"]!.stringValue!, text: text, valid: entry["valid"]!.boolValue!,
                        error: entry["error"]?.stringValue)
        }
    }

    @Test func theTableIsWorthRunning() {
        #expect(Self.cases.count >= 50)
        #expect(Set(Self.cases.map(\.valid)) == [true, false])
    }

    @Test(arguments: cases) func theFunctionDecidesAsTheTableSays(_ c: Case) {
        do {
            _ = try DatabaseSecret.parse(c.text)
            #expect(c.valid, "accepted what the table refuses")
        } catch {
            #expect(!c.valid, "refused what the table accepts: \(error)")
            if let fragment = c.error { #expect(error.description.contains(fragment), "\(error)") }
        }
    }
}
