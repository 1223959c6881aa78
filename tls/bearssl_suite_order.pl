#!/usr/bin/perl
# bearssl_suite_order.pl FILE.c SUITE...
#
# Moves the given cipher suites (hex IDs, e.g. C02B) to the front of BearSSL's
# table of all suites in a generated handshake interpreter (src/ssl/
# ssl_hs_server.c, ssl_hs_client.c), in the order given; the others keep
# their order behind them.
#
# Why: BearSSL's handshake code ("cipher-suite-to-elements" in
# ssl_hs_common.t0) finds a suite's properties by a linear scan of that
# table, run by its interpreter, about twenty times per full handshake; the
# suites meshgate configures sat 27th to 45th of 45. The table is the
# interpreter's data (t0_datablock), pairs of 16-bit words (suite ID,
# elements) ended by 0000; a lookup matches on the ID alone, so the order
# changes no result, only how far each scan goes. Debian ships the generated
# C (its T0 compiler needs Mono), so the data is edited here, after a check
# that the table is where and what it should be; the file is left untouched
# if anything does not match. Running it again gives the same file.
use strict;
use warnings;

my ($file, @first) = @ARGV;
die "usage: $0 FILE.c SUITE...\n" unless defined $file && @first;
my %rank;
for my $i (0 .. $#first) {
	$first[$i] =~ /^[0-9A-Fa-f]{4}$/ or die "$0: '$first[$i]' is not a 4-digit hex suite ID\n";
	$rank{hex $first[$i]} = $i;
}
open my $fh, '<', $file or die "$file: $!\n";
my $src = do { local $/; <$fh> };
close $fh;

$src =~ /static const unsigned char t0_datablock\[\] = \{([^}]*)\};/
	or die "$file: no t0_datablock\n";
my ($body_at, $body) = ($-[1], $1);
my @tok = $body =~ /0x([0-9A-Fa-f]{2})/g;
my @b = map { hex } @tok;
# Nothing but bytes in the block (the edit rewrites all of it).
(my $rest = $body) =~ s/0x[0-9A-Fa-f]{2}|[\s,]//g;
die "$file: unexpected text in t0_datablock: '$rest'\n" if length $rest;

# The table begins with TLS_RSA_WITH_3DES_EDE_CBC_SHA (000A, elements 0024)
# or, once edited, with the first suite asked for; it is the only run of
# 4-byte entries there that holds every suite asked for before a 0000.
my @hits;
START: for my $s (0 .. $#b - 3) {
	my %seen;
	for (my $i = $s; $i + 1 <= $#b; $i += 4) {
		my $id = $b[$i] << 8 | $b[$i + 1];
		if ($id == 0) {
			push @hits, [$s, ($i - $s) / 4] if keys %seen == @first && ($i - $s) / 4 >= 40;
			next START;
		}
		next START if $i + 3 > $#b;
		$seen{$id}++ if exists $rank{$id};
	}
}
die "$file: cipher-suite table not found (or not all of @first in it)\n" unless @hits;
# The longest such run is the table; a shorter one starting inside it is the
# same table seen from a later entry.
my ($start, $n) = @{(sort { $b->[1] <=> $a->[1] } @hits)[0]};
my $t0 = $b[$start] << 8 | $b[$start + 1];
die "$file: table starts with suite " . sprintf('%04X', $t0) . ", expected 000A or $first[0]\n"
	unless $t0 == 0x000A || $t0 == hex $first[0];

my @ent = map { [@b[$start + 4 * $_ .. $start + 4 * $_ + 3]] } 0 .. $n - 1;
my $id = sub { $_[0][0] << 8 | $_[0][1] };
my %count;
$count{$id->($_)}++ for @ent;
die "$file: suite listed twice in the table\n" if grep { $_ > 1 } values %count;
my @front = sort { $rank{$id->($a)} <=> $rank{$id->($b)} } grep { exists $rank{$id->($_)} } @ent;
my @back = grep { !exists $rank{$id->($_)} } @ent;
splice @b, $start, 4 * $n, map { @$_ } @front, @back;

my $out = '';
for my $i (0 .. $#b) {
	$out .= ($i % 12 ? ' ' : "\n\t") . sprintf('0x%02X', $b[$i]) . ($i < $#b ? ',' : "\n");
}
substr($src, $body_at, length $body) = $out;
open $fh, '>', "$file.tmp" or die "$file.tmp: $!\n";
print $fh $src or die "$file.tmp: $!\n";
close $fh or die "$file.tmp: $!\n";
rename "$file.tmp", $file or die "$file: $!\n";
