# Admin console: the dashboard assets embedded into the binary, and the
# packages of its end-to-end test (tests/admin/test_admin.sh).
TEST_PKGS += prometheus chromium chromium-driver

ADMIN_UI_FILES := appliance/admin_ui/index.html appliance/admin_ui/admin.css appliance/admin_ui/admin.js
$(BUILD)/gen/admin_ui_assets.inc: appliance/admin_ui/embed.sh $(ADMIN_UI_FILES)
	@mkdir -p $(dir $@)
	sh appliance/admin_ui/embed.sh $@ $(ADMIN_UI_FILES)
$(BUILD)/obj/appliance/admin_ui.o: $(BUILD)/gen/admin_ui_assets.inc
$(BUILD)/obj/appliance/admin_ui.o: CFLAGS += -I$(BUILD)/gen
