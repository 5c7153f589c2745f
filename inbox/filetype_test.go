package inbox_test

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/microdeets/microchat/inbox"
)

// ftyp builds the start of an ISO-BMFF file (ISO/IEC 14496-12 4.3): the
// ftyp box with its major brand, minor version 0 and compatible brands,
// then the start of a box that follows, as cameras and phones write it.
func ftyp(major string, compatible ...string) []byte {
	var b bytes.Buffer
	size := 16 + 4*len(compatible)
	b.Write([]byte{0, 0, 0, byte(size)})
	b.WriteString("ftyp" + major + "\x00\x00\x00\x00" + strings.Join(compatible, ""))
	b.WriteString("\x00\x00\x00\x08free")
	return b.Bytes()
}

// zipOf is a ZIP archive with these files, in this order, as Office,
// LibreOffice and Java write them.
func zipOf(t *testing.T, files ...string) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, name := range files {
		content := "x"
		method := zip.Deflate
		if name == "mimetype" {
			content, method = "application/vnd.oasis.opendocument.text", zip.Store // ODF: first, uncompressed
		}
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// elf is the header of a 64-bit little-endian ELF file of this e_type
// (2 executable, 3 shared object).
func elf(etype byte) []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16] = etype
	h[18] = 0x3e // x86-64
	return h
}

// TestDetectFileType: the formats that phones and desktops produce are
// accepted with their type; programs and unknown binary are refused with
// the detected type and the reason.
func TestDetectFileType(t *testing.T) {
	ogg := func(codec string) []byte {
		b := make([]byte, 28, 64)
		copy(b, "OggS\x00\x02")
		b[26], b[27] = 1, byte(len(codec))
		return append(b, codec+"\x01\x02\x00\x00\x80\xbb\x00\x00\x00\x00\x00"...)
	}
	ebml := func(doctype string) []byte {
		return []byte("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04\x42\xf3\x81\x08\x42\x82\x84" + doctype + "\x42\x87\x81\x04")
	}
	bmp := append([]byte("BM\x46\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00"), make([]byte, 40)...)
	macho := append([]byte{0xcf, 0xfa, 0xed, 0xfe, 0x07, 0x00, 0x00, 0x01, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00}, make([]byte, 16)...)
	pe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), make([]byte, 200)...)
	for _, tc := range []struct {
		name string
		data []byte
		want string // the accepted type, or the refused type's base
		why  string // "" if accepted, else a word of the reason
	}{
		// Photos: the iPhone's HEIC as the issue found it, and its kin.
		{"iPhone HEIC", ftyp("heic", "mif1", "MiHB", "MiHE", "miaf", "heic"), "image/heic", ""},
		{"HEIC heix", ftyp("heix", "mif1", "heix"), "image/heic", ""},
		{"HEIF mif1 with heic", ftyp("mif1", "mif1", "heic"), "image/heic", ""},
		{"HEIF mif1", ftyp("mif1", "mif1", "miaf"), "image/heif", ""},
		{"HEIF heim", ftyp("heim", "mif1"), "image/heif", ""},
		{"HEIC burst hevc", ftyp("hevc", "msf1", "hevc"), "image/heic-sequence", ""},
		{"HEIF sequence msf1", ftyp("msf1", "msf1"), "image/heif-sequence", ""},
		{"AVIF", ftyp("avif", "avif", "mif1", "miaf", "MA1B"), "image/avif", ""},
		{"AVIF sequence", ftyp("avis", "avis", "msf1", "miaf"), "image/avif", ""},
		{"AVIF under mif1", ftyp("mif1", "mif1", "avif", "miaf"), "image/avif", ""},
		{"JPEG", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"), "image/jpeg", ""},
		{"JPEG EXIF", []byte("\xff\xd8\xff\xe1\x00\x18Exif\x00\x00MM\x00\x2a"), "image/jpeg", ""},
		{"PNG", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"), "image/png", ""},
		{"GIF", []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00"), "image/gif", ""},
		{"WebP", []byte("RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00"), "image/webp", ""},
		{"JPEG XL codestream", []byte("\xff\x0a\xfa\x7f\x01\x90\x08"), "image/jxl", ""},
		{"JPEG XL container", []byte("\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl "), "image/jxl", ""},
		{"TIFF little-endian", []byte("II*\x00\x08\x00\x00\x00"), "image/tiff", ""},
		{"TIFF big-endian", []byte("MM\x00*\x00\x00\x00\x08"), "image/tiff", ""},
		{"BMP", bmp, "image/bmp", ""},
		{"ICO", []byte("\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00"), "image/x-icon", ""},
		{"SVG", []byte(`<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>`), "image/svg+xml", ""},

		// Video and audio: ISO-BMFF brands of phones and cameras, and the rest.
		{"MP4 isom", ftyp("isom", "isom", "iso2", "avc1", "mp41"), "video/mp4", ""},
		{"MP4 iso6", ftyp("iso6", "iso6", "dash"), "video/mp4", ""},
		{"MP4 mp42", ftyp("mp42", "mp42", "mp41", "isom"), "video/mp4", ""},
		{"MP4 avc1", ftyp("avc1", "avc1", "isom"), "video/mp4", ""},
		{"MP4 dash", ftyp("dash", "iso6", "mp41"), "video/mp4", ""},
		{"iPhone MOV", ftyp("qt  ", "qt  "), "video/quicktime", ""},
		{"M4V", ftyp("M4V ", "M4V ", "M4A ", "mp42", "isom"), "video/x-m4v", ""},
		{"M4A", ftyp("M4A ", "M4A ", "mp42", "isom"), "audio/x-m4a", ""},
		{"3GP", ftyp("3gp4", "isom", "3gp4"), "video/3gpp", ""},
		{"3GP2", ftyp("3g2a", "3g2a"), "video/3gpp2", ""},
		{"WebM", ebml("webm"), "video/webm", ""},
		{"Matroska", ebml("matroska"), "video/matroska", ""},
		{"MP3 with ID3", []byte("ID3\x04\x00\x00\x00\x00\x00\x19TSSE\x00\x00\x00\x0f\x00\x00\x03Lavf58.76.100\x00\xff\xfb\x90\x64"), "audio/mpeg", ""},
		{"MP3 frame", []byte("\xff\xfb\x90\x64\x00\x0f\xf0\x00\x00\x69\x00\x00\x00\x08"), "audio/mpeg", ""},
		{"AAC ADTS", []byte("\xff\xf1\x50\x80\x02\x1f\xfc"), "audio/aac", ""},
		{"Ogg Vorbis", ogg("\x01vorbis"), "audio/ogg", ""},
		{"Ogg Opus", ogg("OpusHead"), "audio/ogg", ""},
		{"FLAC", []byte("fLaC\x00\x00\x00\x22\x10\x00\x10\x00"), "audio/flac", ""},
		{"WAV", []byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"), "audio/wav", ""},

		// Documents.
		{"PDF", []byte("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), "application/pdf", ""},
		{"text UTF-8", []byte("Hello, my order 123 has not arrived. Grüße"), "text/plain; charset=utf-8", ""},
		{"text UTF-8 BOM", []byte("\xef\xbb\xbfHello"), "text/plain; charset=utf-8", ""},
		{"text UTF-16LE BOM", []byte("\xff\xfeH\x00i\x00\r\x00\n\x00"), "text/plain; charset=utf-16le", ""},
		{"text UTF-16BE BOM", []byte("\xfe\xff\x00H\x00i\x00\r\x00\n"), "text/plain; charset=utf-16be", ""},
		{"CSV", []byte("order,date,total\n123,2026-11-30,19.90\n124,2026-11-30,5.00\n"), "text/csv", ""},
		{"DOCX", zipOf(t, "[Content_Types].xml", "_rels/.rels", "word/document.xml"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ""},
		{"XLSX", zipOf(t, "[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ""},
		{"ODT", zipOf(t, "mimetype", "content.xml"), "application/vnd.oasis.opendocument.text", ""},
		{"ZIP", zipOf(t, "photos/1.jpg"), "application/zip", ""},
		{"legacy Office (OLE)", append([]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), make([]byte, 504)...), "application/x-ole-storage", ""},
		{"gzip", []byte("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"), "application/gzip", ""},

		// Refused: programs, whatever their platform or runtime.
		{"ELF executable", elf(2), "application/x-executable", "programs"},
		{"ELF shared object", elf(3), "application/x-sharedlib", "programs"},
		{"Windows PE", pe, "application/vnd.microsoft.portable-executable", "programs"},
		{"Mach-O", macho, "application/x-mach-binary", "programs"},
		{"Java JAR", zipOf(t, "META-INF/MANIFEST.MF", "Main.class"), "application/java-archive", "programs"},
		{"WebAssembly", []byte("\x00asm\x01\x00\x00\x00"), "application/wasm", "programs"},
		// Refused: recognised, not on the list; and not recognised.
		{"SQLite", []byte("SQLite format 3\x00\x10\x00\x01\x01"), "application/vnd.sqlite3", "not accepted"},
		{"unknown binary", []byte{0x00, 0x01, 0x02, 0x03, 0xfe, 0xfd, 0x00, 0x07, 0x99}, "application/octet-stream", "recognised"},
	} {
		ct, err := inbox.DetectFileType(tc.data)
		var refused *inbox.RefusedTypeError
		switch {
		case tc.why == "" && (err != nil || ct != tc.want):
			t.Errorf("%s: DetectFileType() = %q, %v; want %q accepted", tc.name, ct, err, tc.want)
		case tc.why != "" && !errors.As(err, &refused):
			t.Errorf("%s: DetectFileType() = %q, %v; want %s refused", tc.name, ct, err, tc.want)
		case tc.why != "" && (refused.Type != tc.want || !strings.Contains(refused.Reason, tc.why) ||
			!strings.HasPrefix(err.Error(), tc.want+": ")):
			t.Errorf("%s: refused as %q (%q); want %s and a reason with %q", tc.name, refused.Type, err, tc.want, tc.why)
		}
	}
}

// FuzzDetectFileType: any content gets an accepted type or a refusal
// that names a type and a reason, never a panic (the ftyp box is parsed
// by hand in heifBrand).
func FuzzDetectFileType(f *testing.F) {
	f.Add(ftyp("heic", "mif1", "heic"))
	f.Add(ftyp("mif1", "avif"))
	f.Add([]byte("\x00\x00\x00\xffftypmif1\x00\x00\x00\x00avif"))
	f.Add([]byte("\x00\x00\x00\x10ftypiso"))
	f.Add(elf(2))
	f.Fuzz(func(t *testing.T, data []byte) {
		ct, err := inbox.DetectFileType(data)
		var refused *inbox.RefusedTypeError
		switch {
		case err == nil && ct == "":
			t.Fatalf("accepted with no type")
		case err != nil && (!errors.As(err, &refused) || refused.Type == "" || refused.Reason == ""):
			t.Fatalf("refused with %v", err)
		}
	})
}
