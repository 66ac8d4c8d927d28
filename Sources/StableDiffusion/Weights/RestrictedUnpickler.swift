import Foundation

/// A value the restricted unpickler can build. Dictionaries and lists are reference types because
/// a pickle builds them empty, remembers them, and fills them in afterwards.
indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes(Data)
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDictionary)
    /// A class or function named by the pickle; only allow-listed names get this far.
    case global(String)
    /// A tensor's storage, named by `persistent_load`: `torch.HalfStorage`, key "17", 6 elements.
    case storage(type: StorageType, key: String, elementCount: Int)
    /// What `_rebuild_tensor_v2` describes: a view of a storage.
    case tensor(storage: PickleValue, offset: Int, shape: [Int], strides: [Int])
    /// A harmless non-tensor object (a numpy scalar such as `global_step`); kept opaque.
    case opaque(String)
}

final class PickleList { var items: [PickleValue] = [] }

/// An insertion-ordered dictionary, as Python's `dict` and `OrderedDict` are.
final class PickleDictionary {
    var keys: [PickleValue] = []
    var values: [PickleValue] = []
}

/// A pickle interpreter that can only build data: the dictionaries, tuples, numbers and strings of
/// a PyTorch state dict, and tensor descriptions.
///
/// A pickle is a little program for a stack machine, and Python's own unpickler will import and
/// call any function the program names (`os.system`, `builtins.eval`, ...). That is why a `.ckpt`
/// from the internet is dangerous to open in Python. This interpreter never calls anything: it
/// knows the opcodes `torch.save` uses, and a short allow-list of names, each of which it
/// *describes* instead of running. Any other name stops it with an error that says which one.
///
/// Allowed names and what they become:
/// - `collections.OrderedDict` → an empty dictionary (state dicts are OrderedDicts)
/// - `torch._utils._rebuild_tensor_v2` → a tensor description (storage, offset, shape, strides)
/// - `torch._utils._rebuild_parameter` → the tensor it wraps
/// - `torch.FloatStorage`, `HalfStorage`, `BFloat16Storage`, `LongStorage` → an element type
/// - `numpy.core.multiarray.scalar`, `numpy.dtype`, `_codecs.encode`, `builtins.set` → an opaque
///   value. Lightning's training checkpoints may keep a few numpy numbers and sets beside the
///   weights; they are skipped like every other non-tensor entry.
/// - `pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint` → only as a name: those files
///   may use the class as a dictionary key for its saved state. Calling it is refused.
///
/// Storages are not in the pickle: it names them with `persistent_load` ids
/// `('storage', <storage type>, <key>, <device>, <element count>)`, and the bytes are the zip
/// entry `<archive>/data/<key>`.
struct RestrictedUnpickler {
    let data: Data
    /// Names the file in messages.
    let path: String

    static let tensorStorageTypes: [String: StorageType] = [
        "torch.FloatStorage": .float32, "torch.HalfStorage": .float16,
        "torch.BFloat16Storage": .bfloat16, "torch.LongStorage": .int64,
    ]
    /// Storage types PyTorch has but this project cannot use (no Float64 or integer weights).
    static let otherStorageTypes: Set<String> = [
        "torch.DoubleStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage",
        "torch.ByteStorage", "torch.BoolStorage", "torch.ComplexFloatStorage", "torch.ComplexDoubleStorage",
        "torch.QInt8Storage", "torch.QUInt8Storage", "torch.QInt32Storage", "torch.UntypedStorage",
    ]
    static let allowedFunctions: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    ]
    /// Functions that build plain data the weights do not need; the result is kept opaque.
    static let dataFunctions: Set<String> = [
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
        "_codecs.encode", "__builtin__.set", "builtins.set",
    ]
    /// Names that may appear but are never called.
    static let namesOnly: Set<String> = ["pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint"]

    func fail(_ reason: String) -> CheckpointError { .corrupt(path, reason) }

    /// Runs the pickle and returns the object it builds.
    func load() throws -> PickleValue {
        var stack: [PickleValue] = []
        var marks: [Int] = []
        var memo: [Int: PickleValue] = [:]
        var position = 0
        let bytes = [UInt8](data)

        func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count >= 0, count <= bytes.count - position else { throw fail("the pickle ends in the middle of an instruction (truncated)") }
            defer { position += count }
            return bytes[position..<(position + count)]
        }
        func unsigned(_ count: Int) throws -> Int {
            try take(count).reversed().reduce(0) { $0 << 8 | Int($1) }
        }
        func pop() throws -> PickleValue {
            guard let value = stack.popLast() else { throw fail("the pickle pops from an empty stack") }
            return value
        }
        func popMark() throws -> [PickleValue] {
            guard let mark = marks.popLast(), mark <= stack.count else { throw fail("the pickle uses a MARK it never set") }
            defer { stack.removeSubrange(mark...) }
            return Array(stack[mark...])
        }
        func text(_ count: Int) throws -> PickleValue {
            guard let string = String(bytes: try take(count), encoding: .utf8) else { throw fail("a string in the pickle is not UTF-8") }
            return .string(string)
        }
        func global(_ module: String, _ name: String) throws -> PickleValue {
            let qualified = module + "." + name
            if Self.tensorStorageTypes[qualified] != nil || Self.allowedFunctions.contains(qualified)
                || Self.dataFunctions.contains(qualified) || Self.namesOnly.contains(qualified) {
                return .global(qualified)
            }
            if Self.otherStorageTypes.contains(qualified) {
                throw fail("it stores a tensor as '\(qualified)'; supported are float32, float16, bfloat16 and int64 storages")
            }
            throw fail("refusing to load '\(qualified)': this checkpoint asks to run code, which a weights file never needs (nothing from it was run)")
        }
        func memoize(_ index: Int) throws {
            guard let top = stack.last else { throw fail("the pickle memoizes from an empty stack") }
            memo[index] = top
        }
        func recall(_ index: Int) throws {
            guard let value = memo[index] else { throw fail("the pickle recalls memo \(index), which was never stored") }
            stack.append(value)
        }
        func setItems(_ items: [PickleValue]) throws {
            guard items.count % 2 == 0, case .dict(let dictionary)? = stack.last else {
                throw fail("the pickle sets items on something that is not a dictionary")
            }
            for pair in stride(from: 0, to: items.count, by: 2) {
                dictionary.keys.append(items[pair])
                dictionary.values.append(items[pair + 1])
            }
        }

        while true {
            let opcode = try unsigned(1)
            switch opcode {
            case 0x80: _ = try take(1)                                        // PROTO
            case 0x95: _ = try take(8)                                        // FRAME
            case 0x2E: return try pop()                                       // STOP '.'
            case 0x28: marks.append(stack.count)                              // MARK '('
            case 0x30: _ = try pop()                                          // POP '0'
            case 0x31: _ = try popMark()                                      // POP_MARK '1'
            case 0x32:                                                        // DUP '2'
                guard let top = stack.last else { throw fail("the pickle duplicates an empty stack") }
                stack.append(top)
            case 0x4E: stack.append(.none)                                    // NONE 'N'
            case 0x88: stack.append(.bool(true))                              // NEWTRUE
            case 0x89: stack.append(.bool(false))                             // NEWFALSE
            case 0x4B: stack.append(.int(try unsigned(1)))                    // BININT1 'K'
            case 0x4D: stack.append(.int(try unsigned(2)))                    // BININT2 'M'
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try unsigned(4)))))  // BININT 'J'
            case 0x8A:                                                        // LONG1: n bytes, two's complement
                let count = try unsigned(1)
                guard count <= 8 else { throw fail("an integer in the pickle has \(count) bytes; at most 8 are supported") }
                var value = try count == 0 ? 0 : unsigned(count)
                if count > 0, count < 8, value & (1 << (count * 8 - 1)) != 0 { value -= 1 << (count * 8) }
                stack.append(.int(value))
            case 0x47:                                                        // BINFLOAT 'G', big-endian
                stack.append(.float(Double(bitPattern: try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x58: stack.append(try text(try unsigned(4)))                // BINUNICODE 'X'
            case 0x8C: stack.append(try text(try unsigned(1)))                // SHORT_BINUNICODE
            case 0x8D: stack.append(try text(try unsigned(8)))                // BINUNICODE8
            case 0x42: stack.append(.bytes(Data(try take(try unsigned(4)))))  // BINBYTES 'B'
            case 0x43: stack.append(.bytes(Data(try take(try unsigned(1)))))  // SHORT_BINBYTES 'C'
            case 0x29: stack.append(.tuple([]))                               // EMPTY_TUPLE ')'
            case 0x74: stack.append(.tuple(try popMark()))                    // TUPLE 't'
            case 0x85: stack.append(.tuple([try pop()]))                      // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))          // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c]))  // TUPLE3
            case 0x5D: stack.append(.list(PickleList()))                      // EMPTY_LIST ']'
            case 0x7D: stack.append(.dict(PickleDictionary()))                // EMPTY_DICT '}'
            case 0x61, 0x65:                                                  // APPEND 'a', APPENDS 'e'
                let items = opcode == 0x61 ? [try pop()] : try popMark()
                guard case .list(let list)? = stack.last else { throw fail("the pickle appends to something that is not a list") }
                list.items += items
            case 0x73: let value = try pop(), key = try pop(); try setItems([key, value])  // SETITEM 's'
            case 0x75: try setItems(try popMark())                            // SETITEMS 'u'
            case 0x71: try memoize(try unsigned(1))                           // BINPUT 'q'
            case 0x72: try memoize(try unsigned(4))                           // LONG_BINPUT 'r'
            case 0x94: try memoize(memo.count)                                // MEMOIZE
            case 0x68: try recall(try unsigned(1))                            // BINGET 'h'
            case 0x6A: try recall(try unsigned(4))                            // LONG_BINGET 'j'
            case 0x63:                                                        // GLOBAL 'c': "module\nname\n"
                func line() throws -> String {
                    guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail("a GLOBAL name in the pickle is not terminated") }
                    defer { position = end + 1 }
                    return String(decoding: bytes[position..<end], as: UTF8.self)
                }
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                        // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else {
                    throw fail("STACK_GLOBAL without two strings")
                }
                stack.append(try global(module, name))
            case 0x51:                                                        // BINPERSID 'Q'
                stack.append(try persistentLoad(try pop()))
            case 0x52:                                                        // REDUCE 'R': f(*args)
                let arguments = try pop(), function = try pop()
                guard case .global(let name) = function, case .tuple(let values) = arguments else {
                    throw fail("the pickle calls something that is not an allowed function")
                }
                stack.append(try call(name, values))
            case 0x62:                                                        // BUILD 'b': set state
                // OrderedDicts get here (their `_metadata` attribute), and numpy dtypes; the state is
                // not needed.
                _ = try pop()
                switch stack.last {
                case .dict?, .opaque?: break
                default: throw fail("the pickle sets the state of an object that is not a dictionary")
                }
            default:
                throw fail(String(format: "the pickle uses opcode 0x%02X at byte %d, which a state dict never needs", opcode, position - 1))
            }
        }
    }

    /// `('storage', <type>, <key>, <device>, <element count>)` → a storage reference.
    func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case .tuple(let fields) = id, fields.count == 5, case .string("storage") = fields[0],
              case .global(let typeName) = fields[1], case .string(let key) = fields[2],
              case .int(let count) = fields[4], count >= 0 else {
            throw fail("the pickle refers to external data that is not a tensor storage")
        }
        guard let type = Self.tensorStorageTypes[typeName] else {
            throw fail("'\(typeName)' is used as a tensor storage but is not one")
        }
        return .storage(type: type, key: key, elementCount: count)
    }

    /// What an allowed function would have returned, computed without running anything.
    func call(_ name: String, _ arguments: [PickleValue]) throws -> PickleValue {
        switch name {
        case "collections.OrderedDict":
            guard arguments.isEmpty else { throw fail("OrderedDict built from arguments, which torch.save never writes") }
            return .dict(PickleDictionary())
        case "torch._utils._rebuild_tensor_v2":
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard arguments.count >= 4, case .storage = arguments[0], case .int(let offset) = arguments[1],
                  let shape = integers(arguments[2]), let strides = integers(arguments[3]),
                  shape.count == strides.count else {
                throw fail("a tensor with a malformed description (_rebuild_tensor_v2 arguments)")
            }
            return .tensor(storage: arguments[0], offset: offset, shape: shape, strides: strides)
        case "torch._utils._rebuild_parameter":
            guard let tensor = arguments.first, case .tensor = tensor else { throw fail("a parameter that wraps no tensor") }
            return tensor
        case _ where Self.dataFunctions.contains(name):
            return .opaque(name)
        default:
            throw fail("refusing to call '\(name)': this checkpoint asks to run code, which a weights file never needs (nothing from it was run)")
        }
    }

    func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let items) = value else { return nil }
        var result: [Int] = []
        for item in items {
            guard case .int(let number) = item else { return nil }
            result.append(number)
        }
        return result
    }
}
