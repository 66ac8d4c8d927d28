import Classroom
import Foundation
import FrameExport
import HummingbirdTesting
import Testing

/// The page in a real browser: headless Chromium opens a shared link, the run starts by itself,
/// the step frames and the final picture appear, and a word's attention map can be shown.
///
/// `Scripts/test.sh` installs Debian's `chromium` when it is missing and sets
/// `SD_BROWSER_TEST=required`, so there this test fails rather than skips without a browser.
/// `SD_SCREENSHOT_DIR=folder` keeps the screenshot it takes.
@Suite("Classroom page in headless Chromium")
struct ClassroomBrowserTests {
    typealias Support = ClassroomTestSupport
    static let required = ProcessInfo.processInfo.environment["SD_BROWSER_TEST"] == "required"

    @Test("a shared link starts a run; its 21 frames, the picture and a word's map appear",
          .enabled(if: ChromiumSession.executable != nil || required), .timeLimit(.minutes(3)))
    func sharedLinkRunsInBrowser() async throws {
        let executable = try #require(ChromiumSession.executable, "no Chromium: install Debian's chromium package (Scripts/setup.sh does)")
        try await Support.application().test(.live) { client in
            let port = try #require(client.port)
            // PNDM with 20 steps evaluates the UNet 21 times, so 21 frames arrive.
            let link = "http://127.0.0.1:\(port)/?prompt=a%20red%20circle%20on%20the%20left&seed=3&steps=20&cfg=3"
            let browser = try ChromiumSession.launch(executable, url: link, width: 1400, height: 2000)
            defer { browser.close() }
            try await browser.drive { page in
                let finished = try await page.wait(until: "['done','failed','busy','closed'].includes(document.querySelector('#status').dataset.state)",
                                                   seconds: 60)
                #expect(finished)
                let state = try await page.evaluate("""
                    JSON.stringify({
                      state: document.querySelector('#status').dataset.state,
                      frames: parseInt(document.querySelector('#frame-count').textContent),
                      slider: document.querySelector('#step-slider').max,
                      final: document.querySelector('#final').src.slice(0, 22),
                      noisy: document.querySelector('#img-noisy').src.slice(0, 22),
                      clean: document.querySelector('#img-clean').src.slice(0, 22),
                      shares: Array.from(document.querySelectorAll('#words .chip .share')).map(s => parseFloat(s.textContent)),
                      chips: Array.from(document.querySelectorAll('#words .chip')).map(c => c.firstChild.textContent),
                      prompt: document.querySelector('#prompt').value
                    })
                    """) as? String ?? "{}"
                let json = try JSONSerialization.jsonObject(with: Data(state.utf8)) as? [String: Any] ?? [:]
                #expect(json["state"] as? String == "done", "\(state)")
                #expect(json["frames"] as? Int == 21, "\(state)")
                for key in ["final", "noisy", "clean"] { #expect(json[key] as? String == "data:image/png;base64,", "\(key)") }
                // Each chip shows its word's share of the attention at this step, a percentage.
                let shares = json["shares"] as? [Double] ?? []
                #expect(shares.count == 6 && shares.allSatisfy { $0 > 0 && $0 < 100 }, "\(shares)")
                #expect(json["chips"] as? [String] == ["a", "red", "circle", "on", "the", "left"], "\(state)")
                #expect(json["prompt"] as? String == "a red circle on the left")

                // Click "circle": its map is drawn over x̂₀, opaque somewhere.
                _ = try await page.evaluate("document.querySelectorAll('#words .chip')[2].click()")
                let drawn = try await page.wait(until: """
                    (() => { const c = document.querySelector('#attention-overlay');
                      if (!c || c.width === 0 || getComputedStyle(c).display === 'none' || c.hidden) return false;
                      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) return true;
                      return false; })()
                    """, seconds: 5)
                #expect(drawn)
                #expect(page.exceptions.isEmpty, "\(page.exceptions)")
                // The replay (8 frames a second) ends on the last step.
                let replayed = try await page.wait(until: "(s => s.value === s.max)(document.querySelector('#step-slider'))", seconds: 10)
                #expect(replayed)

                let png = try await page.screenshot()
                let picture = try RGBImage(decoding: png)
                #expect(picture.width == 1400)
                if let folder = ProcessInfo.processInfo.environment["SD_SCREENSHOT_DIR"] {
                    try png.write(to: URL(fileURLWithPath: folder).appendingPathComponent("classroom-page.png"))
                }
            }
        }
    }
}
