import Foundation
import StableDiffusion

/// What a page or a script asks the classroom server to draw: the options of `sd generate`, under
/// the same names (`negative_prompt` for `--negative-prompt`).
///
/// ```json
/// {"prompt": "a red circle on the left", "seed": 7, "steps": 20, "cfg": 3, "scheduler": "ddim"}
/// ```
///
/// Everything but `prompt` is optional; what is left out takes `sd generate`'s default (25 steps,
/// guidance 7.5, seed 0, PNDM, the model's own picture size), so the same settings give the same
/// picture from the page, the API and the command line.
public struct ClassroomSettings: Codable, Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String?
    public var seed: UInt64?
    public var steps: Int?
    public var cfg: Float?
    public var scheduler: String?
    public var width: Int?
    public var height: Int?

    enum CodingKeys: String, CodingKey {
        case prompt, seed, steps, cfg, scheduler, width, height
        case negativePrompt = "negative_prompt"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        prompt = try container.decode(String.self, forKey: .prompt)
        negativePrompt = try container.decodeIfPresent(String.self, forKey: .negativePrompt)
        // A negative seed would otherwise be reported as "not valid JSON" by some Foundations.
        if let signed = try? container.decodeIfPresent(Int64.self, forKey: .seed), signed < 0 {
            throw ClassroomError.badRequest("seed must be a whole number, 0 or more, got \(signed)")
        }
        seed = try container.decodeIfPresent(UInt64.self, forKey: .seed)
        steps = try container.decodeIfPresent(Int.self, forKey: .steps)
        cfg = try container.decodeIfPresent(Float.self, forKey: .cfg)
        scheduler = try container.decodeIfPresent(String.self, forKey: .scheduler)
        width = try container.decodeIfPresent(Int.self, forKey: .width)
        height = try container.decodeIfPresent(Int.self, forKey: .height)
    }

    public init(prompt: String, negativePrompt: String? = nil, seed: UInt64? = nil, steps: Int? = nil,
                cfg: Float? = nil, scheduler: String? = nil, width: Int? = nil, height: Int? = nil) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.seed = seed
        self.steps = steps
        self.cfg = cfg
        self.scheduler = scheduler
        self.width = width
        self.height = height
    }
}

/// The bounds a shared server keeps to, tighter than `sd generate`'s where one person's request
/// would hold up the whole class.
public struct ClassroomLimits: Sendable {
    /// Characters of prompt or negative prompt. CLIP reads 75 tokens, a few hundred characters.
    public var promptCharacters = 1_000
    /// Sampling steps: enough for any sampler's best picture (PNDM's 50, DDIM's 100).
    public var steps = 200
    /// Picture side in pixels (`sd generate` allows 2048; a 1024x1024 SD picture is already 4x the work of 512).
    public var side = 1_024
    /// Bytes of a JSON request body or a WebSocket message.
    public var messageBytes = 64 * 1024
    /// Bytes of an uploaded picture, and its largest side in pixels.
    public var uploadBytes = 4 * 1024 * 1024
    public var uploadSide = 4_096

    public init() {}
}

extension ClassroomSettings {
    /// The generation request these settings describe, after the checks that keep a shared
    /// server safe (each failure is one sentence naming the setting).
    ///
    /// - Parameter modelSide: the picture size the model was trained at (`sd generate`'s default size).
    public func request(modelSide: Int, limits: ClassroomLimits) throws -> GenerationRequest {
        for (name, text) in [("prompt", prompt), ("negative_prompt", negativePrompt ?? "")] {
            guard text.count <= limits.promptCharacters else {
                throw ClassroomError.badRequest("\(name) is \(text.count) characters long; the most is \(limits.promptCharacters) (CLIP reads only its first 75 tokens)")
            }
        }
        let steps = self.steps ?? 25
        guard (1...limits.steps).contains(steps) else {
            throw ClassroomError.badRequest("steps must be from 1 to \(limits.steps), got \(steps)")
        }
        let cfg = self.cfg ?? 7.5
        guard cfg.isFinite, (0...50).contains(cfg) else {
            throw ClassroomError.badRequest("cfg (the guidance scale) must be from 0 to 50, got \(cfg)")
        }
        let schedulerName = scheduler ?? SchedulerKind.pndm.rawValue
        guard let kind = SchedulerKind(rawValue: schedulerName) else {
            let names = SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw ClassroomError.badRequest("scheduler must be one of \(names), got '\(schedulerName)'")
        }
        let width = self.width ?? modelSide, height = self.height ?? modelSide
        for (name, side) in [("width", width), ("height", height)] {
            guard (64...limits.side).contains(side), side % 8 == 0 else {
                throw ClassroomError.badRequest("\(name) must be a multiple of 8 from 64 to \(limits.side) pixels, got \(side)")
            }
        }
        let request = GenerationRequest(prompt: prompt, negativePrompt: negativePrompt ?? "", steps: steps,
                                        guidanceScale: cfg, seed: seed ?? 0, width: width, height: height,
                                        scheduler: kind)
        do { try request.validate() } catch { throw ClassroomError.badRequest("\(error)") }
        return request
    }

    /// The settings of `request`, every one named (what a shared link or the gallery needs).
    public init(_ request: GenerationRequest) {
        self.init(prompt: request.prompt, negativePrompt: request.negativePrompt, seed: request.seed,
                  steps: request.steps, cfg: request.guidanceScale, scheduler: request.scheduler.rawValue,
                  width: request.width, height: request.height)
    }

    /// Reads settings from a JSON body, with a message that says what is wrong with it.
    public static func decode(_ data: Data) throws -> ClassroomSettings {
        do {
            return try JSONDecoder().decode(ClassroomSettings.self, from: data)
        } catch let error as ClassroomError {
            throw error
        } catch DecodingError.keyNotFound(let key, _) {
            throw ClassroomError.badRequest("the request has no '\(key.stringValue)'")
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ClassroomError.badRequest("'\(field)' has the wrong type: \(context.debugDescription)")
        } catch DecodingError.dataCorrupted(let context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ClassroomError.badRequest(field.isEmpty ? "the request is not valid JSON" : "'\(field)' is not valid: \(context.debugDescription)")
        } catch {
            throw ClassroomError.badRequest("the request is not valid JSON")
        }
    }
}

/// What goes wrong in the classroom server, in words a student can act on.
public enum ClassroomError: Error, CustomStringConvertible, Equatable {
    /// The request itself is wrong (HTTP 400).
    case badRequest(String)
    /// The queue is full (HTTP 503); try again shortly.
    case busy(String)
    /// The browser went away or the server is stopping.
    case cancelled

    public var description: String {
        switch self {
        case .badRequest(let message), .busy(let message): return message
        case .cancelled: return "the generation was cancelled"
        }
    }
}
