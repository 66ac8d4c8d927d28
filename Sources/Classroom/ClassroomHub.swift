import Foundation

/// What every open page sees of the whole class: how many pages are open, which prompt is being
/// drawn, how many runs wait, and the class's latest pictures (so a projector showing the page
/// also shows what the students make on their own devices).
///
/// Each page registers the stream its messages go through; whenever something changes, every
/// page gets one `ClassMessage`.
package actor ClassroomHub {
    /// The newest finished pictures, newest first.
    static let galleryLength = 8
    private var pages: [UUID: AsyncStream<String>.Continuation] = [:]
    private var running: (run: UUID, prompt: String)?
    /// Runs that ended before the news of their start arrived.
    private var endedEarly: Set<UUID> = []
    private var gallery: [GalleryEntry] = []
    private let queue: GenerationQueue

    package init(queue: GenerationQueue) {
        self.queue = queue
    }

    package func join(_ page: UUID, sender: AsyncStream<String>.Continuation) async {
        pages[page] = sender
        await announce()
    }

    package func leave(_ page: UUID) async {
        pages[page] = nil
        await announce()
    }

    /// The queue changed (a run was queued or dropped).
    package func changed() async {
        await announce()
    }

    /// Run `run` left the queue and is being drawn. (Told from the generation thread, so for a
    /// fast run this can arrive after `ended`: then it is ignored.)
    package func drawing(_ run: UUID, prompt: String) async {
        if endedEarly.remove(run) != nil { return }
        running = (run, prompt)
        await announce()
    }

    /// Run `run` ended: finished with `entry` for the gallery, or failed or stopped (nil).
    package func ended(_ run: UUID, entry: GalleryEntry?) async {
        if running?.run == run { running = nil } else { endedEarly.insert(run) }
        if let entry {
            gallery.insert(entry, at: 0)
            if gallery.count > Self.galleryLength { gallery.removeLast(gallery.count - Self.galleryLength) }
        }
        await announce()
    }

    private func announce() async {
        let state = await queue.state
        let message = ClassMessage(pages: pages.count, waiting: state.waiting, drawing: running?.prompt, gallery: gallery).jsonText()
        for sender in pages.values { sender.yield(message) }
    }
}
