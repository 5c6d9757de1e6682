// Generates the demo's pictures: a small landscape per item number, as SVG, made
// here from the number alone (no files, no outside network). Same number, same
// picture, so browsers may cache them.

import { rng } from './seed.mjs';

// Sky top, sky bottom, sun, three mountain layers (far to near).
const PALETTES = [
  ['#1e3c72', '#f5af7b', '#ffe8a3', '#8a6f9e', '#5b4a7a', '#2f2745'], // dusk
  ['#87c5ea', '#e8f4fb', '#fff7d1', '#9fb8c9', '#6b8ca3', '#3c5a6e'], // clear day
  ['#0b1026', '#2b3a67', '#f0f0ff', '#3a4470', '#262d52', '#141833'], // night
  ['#f6d365', '#fda085', '#fff3c4', '#d98b6a', '#a85f4c', '#6b3a33'], // desert
  ['#a1c4fd', '#c2e9fb', '#ffffff', '#7fa88f', '#4f7d64', '#2c4a3b'], // forest
  ['#ff9a9e', '#fecfef', '#fff0f5', '#c38fb1', '#8e6390', '#553c61'], // pink dawn
  ['#4facfe', '#a8edea', '#fefefe', '#6c9fb5', '#3f7490', '#1f4b63'], // fjord
];

function ridge(r, baseY, amp, w, h) {
  const pts = [`0,${h}`];
  const steps = 6 + Math.floor(r() * 5);
  for (let i = 0; i <= steps; i++) {
    const x = (i / steps) * w;
    const y = baseY - r() * amp;
    pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  pts.push(`${w},${h}`);
  return pts.join(' ');
}

/** SVG text of picture `n` (positive integer). */
export function pictureSvg(n) {
  const r = rng(n * 7919 + 17);
  const pal = PALETTES[Math.floor(r() * PALETTES.length)];
  const w = 480, h = 320;
  const sunX = 60 + r() * 360, sunY = 50 + r() * 90, sunR = 18 + r() * 26;
  const l1 = ridge(r, 200, 90, w, h), l2 = ridge(r, 240, 70, w, h), l3 = ridge(r, 285, 50, w, h);
  const stars = pal === PALETTES[2]
    ? Array.from({ length: 30 }, () => `<circle cx="${(r() * w).toFixed(0)}" cy="${(r() * 160).toFixed(0)}" r="${(0.5 + r()).toFixed(1)}" fill="#fff" opacity="${(0.4 + r() * 0.6).toFixed(2)}"/>`).join('')
    : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}">
<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${pal[0]}"/><stop offset="1" stop-color="${pal[1]}"/></linearGradient></defs>
<rect width="${w}" height="${h}" fill="url(#s)"/>${stars}
<circle cx="${sunX.toFixed(0)}" cy="${sunY.toFixed(0)}" r="${sunR.toFixed(0)}" fill="${pal[2]}" opacity="0.9"/>
<polygon points="${l1}" fill="${pal[3]}"/><polygon points="${l2}" fill="${pal[4]}"/><polygon points="${l3}" fill="${pal[5]}"/>
</svg>`;
}
