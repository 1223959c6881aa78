/* The embedded dashboard: appliance/admin_ui/{index.html,admin.css,admin.js}
 * turned into byte arrays at build time by appliance/admin_ui/embed.sh
 * (rule in tests/admin/admin.mk), so the binary serves them itself. */
#include <string.h>

#include "appliance/admin.h"

#include "admin_ui_assets.inc"

const struct admin_asset *admin_asset_find(const char *path)
{
	for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
		if (!strcmp(assets[i].path, path))
			return &assets[i];
	return NULL;
}
