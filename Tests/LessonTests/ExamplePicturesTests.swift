import Foundation
import FrameExport
import LessonKit
import Testing

@Suite("Built-in pictures")
struct ExamplePicturesTests {
    /// The project folder, found from this file's location (Tests/LessonTests/).
    static let projectFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("Examples/hills.png is exactly what ExamplePictures.hills() draws")
    func exampleFileMatchesCode() throws {
        let file = Self.projectFolder.appendingPathComponent(InputPicture.examplePath).path
        let stored = try RGBImage(contentsOfFile: file)
        let drawn = RGBImage(tensor: ExamplePictures.hills())
        #expect(stored.width == 256 && stored.height == 256)
        #expect(stored == drawn)
    }

    @Test("the drawing has the colours of its parts where they should be")
    func sceneLayout() {
        let picture = RGBImage(tensor: ExamplePictures.hills(width: 100, height: 100))
        func pixel(_ x: Int, _ y: Int) -> (Int, Int, Int) {
            let i = (y * 100 + x) * 3
            return (Int(picture.pixels[i]), Int(picture.pixels[i + 1]), Int(picture.pixels[i + 2]))
        }
        let sky = pixel(50, 2), sun = pixel(70, 42), grass = pixel(50, 95), wall = pixel(20, 75)
        #expect(sky.2 > sky.0)                              // deep blue at the top
        #expect(sun.0 > 240 && sun.1 > 220)                 // pale yellow sun
        #expect(grass.1 > grass.0 && grass.1 > grass.2)     // green hill in front
        #expect(wall.0 > 200 && wall.1 > 200)               // light house wall
    }
}
