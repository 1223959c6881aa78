/* `show certs`: see tls_console.h. */
#include "appliance/tls_console.h"

#include <time.h>

#include "appliance/config.h"
#include "tls/tls.h"
#include "tls/x509.h"

#define RENEW_SOON_DAYS 14

static void print_date(struct console *c, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	char buf[32];
	if (gmtime_r(&tt, &tm) && strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
		console_printf(c, "%s", buf);
	else
		console_printf(c, "(unrepresentable time %lld)", (long long)t);
}

static int cmd_show_certs(struct console *c, void *ctx, int argc, char **argv)
{
	const struct tls_console *tc = ctx;
	const struct tls_credentials *cr = *tc->creds;
	const struct config *cfg = *tc->cfg;
	if (argc != 1)
		return CONSOLE_CMD_USAGE;
	console_printf(c, "gateway certificate %s\n", cfg->identity_chain);
	struct tls_x509_info xi;
	enum tls_x509_status st = TLS_X509_TRUNCATED;
	if (cr->chain_len > 0)
		st = tls_x509_parse(cr->chain[0].data, cr->chain[0].data_len, &xi);
	if (st == TLS_X509_OK) {
		console_printf(c, "  identity   %.*s\n", xi.uri ? (int)xi.uri_len : 1,
			       xi.uri ? (const char *)xi.uri : "-");
		console_printf(c, "  not before ");
		print_date(c, xi.not_before);
		console_printf(c, "\n");
	} else {
		console_printf(c, "  (certificate fields unreadable: %s)\n", tls_x509_status_name(st));
	}
	int64_t now = (int64_t)time(NULL);
	long days = (long)((cr->not_after - now) / 86400);
	console_printf(c, "  not after  ");
	print_date(c, cr->not_after);
	console_printf(c, "  (%s%ld day%s%s)\n", cr->not_after < now ? "EXPIRED " : "in ",
		       days < 0 ? -days : days, days == 1 || days == -1 ? "" : "s",
		       cr->not_after >= now && days < RENEW_SOON_DAYS ? ", renew soon" : "");
	console_printf(c, "  key        %s, chain of %zu certificate%s, private key %s\n",
		       cr->key_type == BR_KEYTYPE_EC ? "EC" : "RSA", cr->chain_len,
		       cr->chain_len == 1 ? "" : "s", cfg->identity_key);
	for (int i = 0; i < cr->ndomains; i++)
		console_printf(c, "trust domain %s: %zu root%s from %s\n", cr->domains[i].name,
			       cr->domains[i].nanchors, cr->domains[i].nanchors == 1 ? "" : "s",
			       cr->domains[i].roots_path);
	return CONSOLE_CMD_OK;
}

enum console_err tls_console_register(struct console_registry *reg, struct tls_console *tc,
				      struct tls_credentials *const *creds, struct config *const *cfg)
{
	tc->creds = creds;
	tc->cfg = cfg;
	tc->cmd = (struct console_command){"show certs", "", "gateway certificate expiry and trust bundles",
					   cmd_show_certs, tc};
	return console_register(reg, &tc->cmd);
}
