"""No metadata block of an upload survives in what is stored: EXIF (with GPS), XMP, ICC profiles, IPTC,
PNG text chunks and comments, in every format we take, in the stored image and its thumbnail alike."""

import io
import struct

import pytest
from PIL import Image, ImageCms, PngImagePlugin

from tests.classifier.corpus import astronaut, encode, make_capture

SECRET = "52.5200N-13.4050E-Alice-home"  # a string each block carries, to be found nowhere after
XMP = (
    '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    f'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="{SECRET}"/></rdf:RDF></x:xmpmeta>'
    '<?xpacket end="w"?>'
).encode()


def exif() -> bytes:
    tags = Image.Exif()
    tags[0x010F] = "PhoneMaker"  # Make
    tags[0x013B] = SECRET  # Artist
    gps = tags.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (52.0, 31.0, 12.0), "E", (13.0, 24.0, 18.0)
    return tags.tobytes()


def icc_profile() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return profile.tobytes()


def with_iptc(jpeg: bytes) -> bytes:
    """The JPEG with a Photoshop APP13 segment holding an IPTC caption, as news photos carry it."""
    caption = SECRET.encode()
    iptc = b"\x1c\x02\x78" + struct.pack(">H", len(caption)) + caption  # 2:120, the caption
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\0\0" + struct.pack(">I", len(iptc)) + iptc
    payload = b"Photoshop 3.0\0" + resource
    return jpeg[:2] + b"\xff\xed" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_text() -> bytes:
    chunks = PngImagePlugin.PngInfo()
    chunks.add_text("Author", SECRET)  # tEXt
    chunks.add_text("Comment", SECRET, zip=True)  # zTXt
    chunks.add_itxt("Description", SECRET, lang="en")  # iTXt
    chunks.add_itxt("XML:com.adobe.xmp", XMP.decode())  # XMP, as PNGs carry it
    return encode(astronaut(), "PNG", pnginfo=chunks, exif=exif(), icc_profile=icc_profile())


def tiff_with_tags() -> bytes:
    return encode(
        astronaut(),
        "TIFF",
        tiffinfo={270: SECRET, 315: SECRET, 700: XMP},  # ImageDescription, Artist, XMP
        exif=exif(),
        icc_profile=icc_profile(),
    )


UPLOADS_WITH_METADATA = {
    "photo.jpg": lambda: with_iptc(
        encode(astronaut(), "JPEG", exif=exif(), xmp=XMP, icc_profile=icc_profile(), comment=SECRET)
    ),
    "photo.png": png_with_text,
    "photo.webp": lambda: encode(astronaut(), "WEBP", exif=exif(), xmp=XMP, icc_profile=icc_profile()),
    "photo.tiff": tiff_with_tags,
    "photo.gif": lambda: encode(astronaut(), "GIF", comment=SECRET),
}


def jpeg_segments(data: bytes) -> list[int]:
    """The markers of a JPEG's segments before its image data (SOS)."""
    markers, position = [], 2
    while data[position] == 0xFF and data[position + 1] != 0xDA:
        marker = data[position + 1]
        markers.append(marker)
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    return markers


@pytest.mark.parametrize("name", UPLOADS_WITH_METADATA)
def test_stored_images_keep_no_metadata(user, model_version, media_dir, name):
    upload = UPLOADS_WITH_METADATA[name]()
    assert SECRET.encode() in upload or XMP in upload  # the blocks are really there
    if name != "photo.gif":
        assert "icc_profile" in Image.open(io.BytesIO(upload)).info

    capture = make_capture(user, upload, name=name)

    for stored in (capture.image, capture.thumbnail):
        data = stored.open("rb").read()
        stored.close()
        # Only JFIF's APP0 header, then the tables and the frame: no APP1 (EXIF, XMP), APP2 (ICC), APP13
        # (IPTC) or COM (comment) segment.
        assert {0xE1, 0xE2, 0xED, 0xFE}.isdisjoint(jpeg_segments(data))
        assert jpeg_segments(data).count(0xE0) == 1
        for trace in (
            SECRET.encode(),
            b"Exif",
            b"http://ns.adobe.com/xap",
            b"ICC_PROFILE",
            b"Photoshop",
            b"PhoneMaker",
        ):
            assert trace not in data
        info = Image.open(io.BytesIO(data)).info
        assert {"exif", "xmp", "icc_profile", "comment", "photoshop"}.isdisjoint(info)
