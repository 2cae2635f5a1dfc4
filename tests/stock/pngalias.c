/* The behaviour CVE-2026-34757 fixes in libpng: a pointer returned by
 * png_get_PLTE passed back to png_set_PLTE.  The unfixed setter frees the
 * palette, then copies from the freed memory (glibc hands the same block
 * back, zeroed or with its free-list words in it): the palette comes back
 * wrong.  Every PERIOD ms the program sets a known palette, sets it again
 * from its own getter, and prints whether it survived. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int period = argc > 1 ? atoi(argv[1]) : 50;
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png ? png_create_info_struct(png) : NULL;
	if (!info)
		return 1;
	if (setjmp(png_jmpbuf(png)))
		return 2;
	png_set_IHDR(png, info, 16, 16, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
		     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	for (unsigned long round = 1;; round++) {
		png_color want[256];
		for (int i = 0; i < 256; i++)
			want[i] = (png_color){ (png_byte)(i + 1), (png_byte)(255 - i), (png_byte)(i ^ 0x5a) };
		png_set_PLTE(png, info, want, 256);
		png_colorp pal = NULL;
		int n = 0;
		png_get_PLTE(png, info, &pal, &n);
		png_set_PLTE(png, info, pal, n); /* getter-to-setter aliasing */
		png_get_PLTE(png, info, &pal, &n);
		int bad = 0;
		for (int i = 0; i < 256; i++)
			bad += pal[i].red != want[i].red || pal[i].green != want[i].green ||
			       pal[i].blue != want[i].blue;
		printf("round %lu palette %s (%d entries wrong)\n", round, bad ? "BAD" : "ok", bad);
		fflush(stdout);
		usleep((useconds_t)period * 1000);
	}
}
