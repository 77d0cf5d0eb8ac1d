#!/usr/bin/env bash
# Rebuild data/textures/ (the real-texture anomaly source, the DTD role in DRAEM/MemSeg) from the
# Debian package ufoai-textures (UFO: Alien Invasion), keeping only textures that Debian's
# copyright file lists as public-domain or Expat (no copyleft, no per-file attribution needed
# beyond the Expat notice written into PROVENANCE.md).
#
# Idempotent: the named list below is the selection (sorted, fixed); every run deletes the *.jpg
# files in the output folder and writes the same files and PROVENANCE.md again. Byte-identical
# output needs the same package version (checked by SHA-256) and the same ImageMagick build
# (its version is written into PROVENANCE.md).
#
# Usage: scripts/build_textures.sh [OUT_DIR]        (default: data/textures next to this script)
# Needs: apt-get (Debian/Ubuntu), dpkg-deb, unzip, ImageMagick `convert` (installed if missing
# and run as root). Downloads ~336 MB (the .deb) into $WORK (default /tmp/snarm-textures-build;
# kept between runs as a cache).
set -euo pipefail

PKG=ufoai-textures
PKG_VERSION=${UFOAI_TEXTURES_VERSION:-2.5-2}
# SHA-256 of ufoai-textures_2.5-2_all.deb (Debian 12 bookworm main). Set DEB_SHA256= to skip.
DEB_SHA256=${DEB_SHA256-51c9c6a778249a3fa432c81c8c30ac5675ae5a1e675a33b0ce04545753d3218c}
MAX_SIDE=256
QUALITY=85

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:-$here/../data/textures}
WORK=${WORK:-/tmp/snarm-textures-build}
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)

# --- tools ------------------------------------------------------------------------------------
need=()
command -v unzip >/dev/null || need+=(unzip)
command -v dpkg-deb >/dev/null || need+=(dpkg)
# /usr/bin/convert must be ImageMagick's (not e.g. a stub): check its banner.
if ! convert -version 2>/dev/null | grep -q ImageMagick; then need+=(imagemagick); fi
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "build_textures: missing ${need[*]}; install them (apt-get install ${need[*]})" >&2
    exit 1
  fi
  apt-get install -y --no-install-recommends "${need[@]}"
fi

# --- package ------------------------------------------------------------------------------------
deb="$WORK/${PKG}_${PKG_VERSION}_all.deb"
if [[ ! -s $deb ]]; then
  (cd "$WORK" && apt-get download "$PKG=$PKG_VERSION") || {
    echo "build_textures: apt-get download $PKG=$PKG_VERSION failed (run apt-get update?)" >&2
    exit 1
  }
fi
sum=$(sha256sum "$deb" | cut -d' ' -f1)
if [[ -n $DEB_SHA256 && $sum != "$DEB_SHA256" ]]; then
  echo "build_textures: $deb has SHA-256 $sum, expected $DEB_SHA256" >&2
  exit 1
fi
x="$WORK/x"
if [[ ! -f $x/.done-$PKG_VERSION ]]; then
  rm -rf "$x" && mkdir -p "$x"
  dpkg-deb -x "$deb" "$x"
  touch "$x/.done-$PKG_VERSION"
fi
pk3="$x/usr/share/games/ufoai/base/0textures.pk3"
copyright="$x/usr/share/doc/$PKG/copyright"

# --- selection ------------------------------------------------------------------------------------
# licence (as in Debian's copyright file)  path inside the package (base/…)  output name
# Photographic surface textures only: no normal/specular maps (_nm, _sm), no pictures, book
# covers, signs, sci-fi panels, doors, trims, or images under 64 px.
read -r -d '' LIST <<'EOF' || true
public-domain base/textures/tex_buildings/carpet008.png buildings_carpet008.jpg
public-domain base/textures/tex_buildings/carpet009.png buildings_carpet009.jpg
public-domain base/textures/tex_buildings/carpet010.png buildings_carpet010.jpg
public-domain base/textures/tex_buildings/carpet011.png buildings_carpet011.jpg
public-domain base/textures/tex_buildings/carpet012.png buildings_carpet012.jpg
public-domain base/textures/tex_buildings/carpet018.png buildings_carpet018.jpg
public-domain base/textures/tex_buildings/carpet021.png buildings_carpet021.jpg
public-domain base/textures/tex_buildings/carpet023.png buildings_carpet023.jpg
public-domain base/textures/tex_buildings/carpet025.png buildings_carpet025.jpg
public-domain base/textures/tex_buildings/floor005.png buildings_floor005.jpg
public-domain base/textures/tex_buildings/floor_wood01.png buildings_floor_wood01.jpg
public-domain base/textures/tex_buildings/metal01.png buildings_metal01.jpg
public-domain base/textures/tex_buildings/metal02.png buildings_metal02.jpg
public-domain base/textures/tex_buildings/paving001.png buildings_paving001.jpg
public-domain base/textures/tex_buildings/solar.jpg buildings_solar.jpg
public-domain base/textures/tex_buildings/tile01.png buildings_tile01.jpg
public-domain base/textures/tex_buildings/tile02.png buildings_tile02.jpg
public-domain base/textures/tex_buildings/tile03.png buildings_tile03.jpg
public-domain base/textures/tex_doors/door009.png doors_door009.jpg
public-domain base/textures/tex_material/metall006.jpg material_metall006.jpg
public-domain base/textures/tex_material/s_wood001.png material_s_wood001.jpg
public-domain base/textures/tex_material/s_wood002.png material_s_wood002.jpg
public-domain base/textures/tex_material/s_wood003.png material_s_wood003.jpg
public-domain base/textures/tex_material/wood001.png material_wood001.jpg
public-domain base/textures/tex_material/wood003.png material_wood003.jpg
public-domain base/textures/tex_misc/barrel_side.png misc_barrel_side.jpg
public-domain base/textures/tex_misc/pipes001.png misc_pipes001.jpg
public-domain base/textures/tex_misc/pipes002.png misc_pipes002.jpg
public-domain base/textures/tex_misc/pipes003.jpg misc_pipes003.jpg
public-domain base/textures/tex_nature/desert009.png nature_desert009.jpg
public-domain base/textures/tex_nature/dirt002.png nature_dirt002.jpg
public-domain base/textures/tex_nature/dirt003.png nature_dirt003.jpg
public-domain base/textures/tex_nature/ice001.jpg nature_ice001.jpg
public-domain base/textures/tex_nature/jungle001.png nature_jungle001.jpg
public-domain base/textures/tex_nature/jungle002.png nature_jungle002.jpg
public-domain base/textures/tex_nature/potatoes.png nature_potatoes.jpg
public-domain base/textures/tex_nature/railway.png nature_railway.jpg
public-domain base/textures/tex_nature/rock017.png nature_rock017.jpg
public-domain base/textures/tex_nature/rock018.png nature_rock018.jpg
public-domain base/textures/tex_nature/stone001.png nature_stone001.jpg
Expat base/textures/tex_trak/floor2a.png trak_floor2a.jpg
Expat base/textures/tex_trak/grate1a.png trak_grate1a.jpg
Expat base/textures/tex_trak/trak4_brick1.png trak_trak4_brick1.jpg
Expat base/textures/tex_trak/trak4_brick2.png trak_trak4_brick2.jpg
Expat base/textures/tex_trak/trak4_brick2a.png trak_trak4_brick2a.jpg
Expat base/textures/tex_trak/trak4_brick2b.png trak_trak4_brick2b.jpg
Expat base/textures/tex_trak/trak4_concrete1a.png trak_trak4_concrete1a.jpg
Expat base/textures/tex_trak/trak4_concrete1b.png trak_trak4_concrete1b.jpg
Expat base/textures/tex_trak/trak4_concrete2a.png trak_trak4_concrete2a.jpg
Expat base/textures/tex_trak/trak4_concrete3.png trak_trak4_concrete3.jpg
Expat base/textures/tex_trak/trak4_concrete4a.png trak_trak4_concrete4a.jpg
Expat base/textures/tex_trak/trak4_concrete4b.png trak_trak4_concrete4b.jpg
Expat base/textures/tex_trak/trak4_concrete5a.png trak_trak4_concrete5a.jpg
Expat base/textures/tex_trak/trak4_grate1.png trak_trak4_grate1.jpg
Expat base/textures/tex_trak/trak4_grate2a.png trak_trak4_grate2a.jpg
Expat base/textures/tex_trak/trak4_plaster3b.png trak_trak4_plaster3b.jpg
Expat base/textures/tex_trak/trak4_plaster3c-3.png trak_trak4_plaster3c-3.jpg
EOF

# Check each file's licence against Debian's machine-readable copyright file (DEP-5: the
# paragraph whose Files: list names the path exactly; none of these paths is in two paragraphs).
licence_of() {
  awk -v f="$1" '
    /^Files:/ { infiles = 1; hit = 0 }
    /^License:/ { if (infiles && hit) { sub(/^License:[ \t]*/, ""); print; exit } infiles = 0 }
    infiles { for (i = 1; i <= NF; i++) if ($i == f) hit = 1 }
  ' "$copyright"
}

tmp="$WORK/src"
rm -rf "$tmp" && mkdir -p "$tmp"
find "$OUT" -maxdepth 1 -type f -name '*.jpg' -delete
n=0
while read -r lic path name; do
  [[ -z $lic ]] && continue
  got=$(licence_of "$path")
  if [[ $got != "$lic" ]]; then
    echo "build_textures: $path is '$got' in $copyright, expected '$lic'" >&2
    exit 1
  fi
  inner=${path#base/}
  unzip -q -o "$pk3" "$inner" -d "$tmp"
  # Alpha dropped (not composited), as lib/io/image.ts and cv2 do; grey sources written as
  # 3-channel JPEG; fit inside MAX_SIDE², aspect kept, never enlarged; no metadata.
  convert "$tmp/$inner" -alpha off -colorspace sRGB -resize "${MAX_SIDE}x${MAX_SIDE}>" \
    -type TrueColor -strip -sampling-factor 2x2 -quality "$QUALITY" "$OUT/$name"
  n=$((n + 1))
done <<<"$LIST"

# --- PROVENANCE.md ------------------------------------------------------------------------------
im=$(convert -version | head -1 | sed 's/^Version: //; s| https://.*||')
{
  cat <<EOF
# data/textures — real-texture anomaly source (the DTD role in DRAEM / MemSeg)

$n photographic surface textures (carpet, wood, metal, concrete, brick, plaster, tiles, gravel,
rock, dirt, grass, ice, sand, pipes) for \`synthesizeAnomaly({ textureDir })\`
(\`lib/train/synth.ts\`, \`DEFAULT_TEXTURE_DIR\`). DTD itself cannot be redistributed here.

Built by \`scripts/build_textures.sh\` (run it to rebuild this folder byte for byte with the same
package and ImageMagick versions).

## Source

- Debian package **$PKG $PKG_VERSION** (Debian 12 bookworm, main; \`all\`; SHA-256 of the .deb
  \`$sum\`), file \`/usr/share/games/ufoai/base/0textures.pk3\` (a ZIP), from
  UFO: Alien Invasion (https://ufoai.org, http://sourceforge.net/projects/ufoai/).
- Licences as stated per file in the package's machine-readable copyright file
  \`/usr/share/doc/$PKG/copyright\`. Only files listed there as **public-domain** or **Expat**
  were taken (the package's other files are GPL-2+, GPL-2, GPL-3+, CC-BY-3.0 or CC-BY-SA-3.0 and
  are not used).

## Changes

Each file was extracted, its alpha channel dropped (not composited), converted to sRGB 3-channel,
resized to fit inside ${MAX_SIDE}×${MAX_SIDE} (aspect ratio kept, never enlarged), metadata
stripped, and saved as baseline JPEG quality $QUALITY, 4:2:0 (ImageMagick $im). Output names are
\`<folder without tex_>_<original name>.jpg\`.

## Licences and copyright holders

### public-domain

Debian's copyright file: "These files were granted to the public domain." Copyright field of
that paragraph (all public-domain files of the package together, not per file): Holger "ShipIt"
Gellrich; yughues / Yughues; Nobiax; Nobiax, Nate Wright; Nobiax, MCR; MCR; OpenGameArt;
FWishbringer; West; sauer2; http://www.burningwell.org; Golgotha Public Domain Data; US Federal
Government; and authors of pictures not used here. No obligations; credit given as courtesy.

### Expat (files \`trak_*.jpg\`)

Copyright: Georges "TRaK" Grondin

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT
OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

## Files

| file | original path in 0textures.pk3 (package path base/…) | original size | licence |
| --- | --- | --- | --- |
EOF
  while read -r lic path name; do
    [[ -z $lic ]] && continue
    inner=${path#base/}
    dims=$(identify -format '%wx%h' "$tmp/$inner" 2>/dev/null | head -1)
    echo "| $name | $path | $dims | $lic |"
  done <<<"$LIST"
} >"$OUT/PROVENANCE.md"

rm -rf "$tmp"
echo "build_textures: wrote $n textures and PROVENANCE.md to $OUT"
