import Foundation
import HummingbirdWebSocket
import NIOCore
import StableDiffusion

/// One open page: reads what it sends over the WebSocket, queues its runs, and streams each run's
/// steps back to it; the class hub tells it what the rest of the class is doing.
///
/// Messages to the page go through one stream, written by one task, so the generation thread
/// never waits for a slow network and messages never interleave. When the page closes, its
/// waiting runs are dropped and its running one stops at the next step.
struct PageConnection {
    let server: ClassroomServer
    let outbound: WebSocketOutboundWriter
    let id = UUID()

    func serve(_ inbound: WebSocketInboundMessageStream) async throws {
        let (messages, sender) = AsyncStream<String>.makeStream()
        let outbound = self.outbound
        let writer = Task {
            for await text in messages { try? await outbound.write(.text(text)) }
        }
        sender.yield(HelloMessage(model: server.model.info).jsonText())
        await server.hub.join(id, sender: sender)
        await withTaskGroup(of: Void.self) { runs in
            do {
                for try await message in inbound {
                    guard case .text(let text) = message else {
                        sender.yield(FailedMessage(run: nil, message: "the page sends JSON text, not binary messages").jsonText())
                        continue
                    }
                    await handle(text, sender: sender, runs: &runs)
                }
            } catch {
                // A message over the size limit (or a broken connection) ends the connection; the
                // library closes it with "message too big" (1009), which the page shows.
            }
            await server.queue.dropWork(of: id)
        }
        await server.hub.leave(id)
        sender.finish()
        await writer.value
    }

    /// One message from the page. A cancel is done before the next message is read, so a
    /// generate sent right after it is never dropped by it.
    private func handle(_ text: String, sender: AsyncStream<String>.Continuation, runs: inout TaskGroup<Void>) async {
        guard let message = try? JSONDecoder().decode(PageMessage.self, from: Data(text.utf8)) else {
            sender.yield(FailedMessage(run: nil, message: "the message is not valid JSON with a 'type'").jsonText())
            return
        }
        let run = String((message.run ?? "run").prefix(40))
        switch message.type {
        case "generate":
            guard let settings = message.settings else {
                sender.yield(FailedMessage(run: run, message: "a generate message needs its 'settings'").jsonText())
                return
            }
            runs.addTask { await generate(settings, run: run, sender: sender) }
        case "cancel":
            await server.queue.dropWork(of: id)
        default:
            sender.yield(FailedMessage(run: run, message: "unknown message type '\(message.type.prefix(40))'").jsonText())
        }
    }

    /// One run: its turn in the queue, its steps, its result.
    private func generate(_ settings: ClassroomSettings, run: String, sender: AsyncStream<String>.Continuation) async {
        do {
            let request = try settings.request(modelSide: server.model.info.side, limits: server.limits)
            let model = server.model
            let hub = server.hub, token = UUID()
            let finished: ClassroomModel.FinishedRun
            do {
                finished = try await server.queue.run(owner: id, positionChanged: { position in
                    sender.yield(QueuedMessage(run: run, position: position).jsonText())
                    Task { await hub.changed() }
                }) { cancelled in
                    Task { await hub.drawing(token, prompt: request.prompt) }
                    return try model.watch(request, run: run, cancellation: cancelled) { sender.yield($0.jsonText()) }
                }
            } catch let error as ClassroomError {
                await hub.changed()   // refused (busy) or dropped before it started
                throw error
            } catch {
                await hub.ended(token, entry: nil)   // stopped or failed while drawing
                throw error
            }
            let saved = server.runs.add(finished)
            sender.yield(DoneMessage(run: run, image: "data:image/png;base64," + finished.png.base64EncodedString(), png: "/api/runs/\(saved).png",
                                     gif: "/api/runs/\(saved).gif", seconds: finished.seconds).jsonText())
            await hub.ended(token, entry: GalleryEntry(thumbnail: finished.thumbnail, png: "/api/runs/\(saved).png",
                                                       settings: ClassroomSettings(request)))
        } catch ClassroomError.busy(let message) {
            sender.yield(BusyMessage(run: run, message: message).jsonText())
        } catch ClassroomError.cancelled, GenerationError.cancelled {
            sender.yield(FailedMessage(run: run, message: "cancelled").jsonText())
        } catch {
            sender.yield(FailedMessage(run: run, message: "\(error)").jsonText())
        }
    }
}
